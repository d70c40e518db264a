/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KBUS - a kernel-mediated message bus: shared definitions of the module.
 *
 * This is a clean-room implementation written from the project's behavioural
 * specification (kbus-spec.md). See kbus_main.c for the locking rules.
 */
#ifndef KBUS_INTERNAL_H
#define KBUS_INTERNAL_H

#include <linux/atomic.h>
#include <linux/build_bug.h>
#include <linux/device.h>
#include <linux/hrtimer.h>
#include <linux/ioctl.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/rhashtable-types.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/wait.h>
#include <linux/xarray.h>

/* ------------------------------------------------------------------------
 * User ABI (spec section 3)
 */

#define KBUS_MSG_START_GUARD	0x7375624B
#define KBUS_MSG_END_GUARD	0x4B627573

struct kbus_msg_id {
	__u32 network_id;
	__u32 serial_num;
};

struct kbus_orig_from {
	__u32 network_id;
	__u32 local_id;
};

/* BIND / UNBIND argument */
struct kbus_bind_request {
	__u32 is_replier;
	__u32 name_len;
	char __user *name;
};

/* REPLIER argument */
struct kbus_bind_query {
	__u32 return_id;
	__u32 name_len;
	char __user *name;
};

struct kbus_message_header {
	__u32 start_guard;
	struct kbus_msg_id id;
	struct kbus_msg_id in_reply_to;
	__u32 to;
	__u32 from;
	struct kbus_orig_from orig_from;
	struct kbus_orig_from final_to;
	__u32 extra;
	__u32 flags;
	__u32 name_len;
	__u32 data_len;
	char __user *name;
	void __user *data;
	__u32 end_guard;
};

static_assert(sizeof(struct kbus_message_header) ==
	      (sizeof(void *) == 8 ? 88 : 72));

/*
 * The layouts of a task with 4-byte pointers on a 64-bit kernel (compat,
 * spec 3.2 and 3.3 "Off (32-bit)"): the pointers are 32-bit user addresses
 * (compat_uptr_t), so nothing is padded. On a 32-bit kernel they are the
 * native layouts.
 */
struct kbus_bind_request32 {
	__u32 is_replier;	/* kbus_bind_query: return_id */
	__u32 name_len;
	__u32 name;
};

struct kbus_message_header32 {
	__u32 start_guard;
	struct kbus_msg_id id;
	struct kbus_msg_id in_reply_to;
	__u32 to;
	__u32 from;
	struct kbus_orig_from orig_from;
	struct kbus_orig_from final_to;
	__u32 extra;
	__u32 flags;
	__u32 name_len;
	__u32 data_len;
	__u32 name;
	__u32 data;
	__u32 end_guard;
};

static_assert(sizeof(struct kbus_bind_request32) == 12);
static_assert(sizeof(struct kbus_message_header32) == 72);

/* Data of a $.KBUS.ReplierBindEvent: these three words, then the name */
struct kbus_replier_bind_event_data {
	__u32 is_bind;
	__u32 binder;
	__u32 name_len;
};

#define KBUS_BIT_WANT_A_REPLY		BIT(0)
#define KBUS_BIT_WANT_YOU_TO_REPLY	BIT(1)
#define KBUS_BIT_SYNTHETIC		BIT(2)
#define KBUS_BIT_URGENT			BIT(3)
#define KBUS_BIT_ALL_OR_WAIT		BIT(8)
#define KBUS_BIT_ALL_OR_FAIL		BIT(9)

#define KBUS_IOC_MAGIC		'k'
#define KBUS_IOC_RESET		_IO(KBUS_IOC_MAGIC, 1)
#define KBUS_IOC_BIND		_IOW(KBUS_IOC_MAGIC, 2, char *)
#define KBUS_IOC_UNBIND		_IOW(KBUS_IOC_MAGIC, 3, char *)
#define KBUS_IOC_KSOCKID	_IOR(KBUS_IOC_MAGIC, 4, char *)
#define KBUS_IOC_REPLIER	_IOWR(KBUS_IOC_MAGIC, 5, char *)
#define KBUS_IOC_NEXTMSG	_IOR(KBUS_IOC_MAGIC, 6, char *)
#define KBUS_IOC_LENLEFT	_IOR(KBUS_IOC_MAGIC, 7, char *)
#define KBUS_IOC_SEND		_IOR(KBUS_IOC_MAGIC, 8, char *)
#define KBUS_IOC_DISCARD	_IO(KBUS_IOC_MAGIC, 9)
#define KBUS_IOC_LASTSENT	_IOR(KBUS_IOC_MAGIC, 10, char *)
#define KBUS_IOC_MAXMSGS	_IOWR(KBUS_IOC_MAGIC, 11, char *)
#define KBUS_IOC_NUMMSGS	_IOR(KBUS_IOC_MAGIC, 12, char *)
#define KBUS_IOC_UNREPLIEDTO	_IOR(KBUS_IOC_MAGIC, 13, char *)
#define KBUS_IOC_MSGONLYONCE	_IOWR(KBUS_IOC_MAGIC, 14, char *)
#define KBUS_IOC_VERBOSE	_IOWR(KBUS_IOC_MAGIC, 15, char *)
#define KBUS_IOC_NEWDEVICE	_IOR(KBUS_IOC_MAGIC, 16, char *)
#define KBUS_IOC_REPORTREPLIERBINDS _IOWR(KBUS_IOC_MAGIC, 17, char *)
#define KBUS_IOC_MAXMSGSIZE	_IOWR(KBUS_IOC_MAGIC, 18, char *)
#define KBUS_IOC_MAXNR		18

/* ------------------------------------------------------------------------
 * Limits (spec section 3.8)
 */

#define KBUS_MAX_NAME_LEN		1000
#define KBUS_MIN_NAME_LEN		3
#define KBUS_DEF_MAX_MESSAGES		100
#define KBUS_MAX_UNSENT_UNBIND_MSGS	1000
#define KBUS_MAX_NUM_DEVICES		256
#define KBUS_MIN_MAX_MESSAGE_SIZE	100
#define KBUS_DEF_MAX_MESSAGE_SIZE	409600
/* Our own ceiling for the kbus_abs_max_message_size module parameter */
#define KBUS_ABS_MAX_MESSAGE_SIZE_LIMIT	(64U << 20)
#define KBUS_INIT_OUTSTANDING_SIZE	16
#define KBUS_JUST_ASK			0xFFFFFFFFU

#define KBUS_HDR_LEN	((u32)sizeof(struct kbus_message_header))

/*
 * Header size in the layout of a message crossing to or from user space:
 * the kernel's own, or that of a task with 4-byte pointers (@compat).
 */
static inline u32 kbus_hdr_len(bool compat)
{
	return compat ? (u32)sizeof(struct kbus_message_header32) :
			KBUS_HDR_LEN;
}

#define KBUS_NAME_GONEAWAY	"$.KBUS.Replier.GoneAway"
#define KBUS_NAME_IGNORED	"$.KBUS.Replier.Ignored"
#define KBUS_NAME_UNBOUND	"$.KBUS.Replier.Unbound"
#define KBUS_NAME_DISAPPEARED	"$.KBUS.Replier.Disappeared"
#define KBUS_NAME_ERRORSENDING	"$.KBUS.ErrorSending"
#define KBUS_NAME_EVENTS_LOST	"$.KBUS.UnbindEventsLost"
#define KBUS_NAME_BIND_EVENT	"$.KBUS.ReplierBindEvent"

static inline u32 kbus_padded_name_len(u32 name_len)
{
	return 4 * ((name_len + 1 + 3) / 4);
}

static inline u64 kbus_padded_data_len(u32 data_len)
{
	return 4 * (((u64)data_len + 3) / 4);
}

/* ENTIRE() in a user layout (spec 3.4) */
static inline u64 kbus_layout_entire_len(bool compat, u32 name_len,
					 u32 data_len)
{
	return kbus_hdr_len(compat) + kbus_padded_name_len(name_len) +
	       kbus_padded_data_len(data_len) + 4;
}

/* ENTIRE() with the kernel's own header: a message's size in the module */
static inline u64 kbus_entire_len(u32 name_len, u32 data_len)
{
	return kbus_layout_entire_len(false, name_len, data_len);
}

/* Defaults of the spec section 14 limits (module parameters) */
#define KBUS_DEF_MAX_QUEUED_BYTES	(64U << 20)
#define KBUS_DEF_MAX_MSGS_LIMIT		65536

/* Default of the Reply spinning window (kbus_main.c), microseconds */
#define KBUS_DEF_REPLY_SPIN_US		100

/* Default of the wake-up coalescing window (kbus_deliver.c), microseconds */
#define KBUS_DEF_WAKE_COALESCE_US	500
/* SENDs of one Ksock closer than this (more than 500/s) are a stream */
#define KBUS_STREAM_GAP_NS		(2 * NSEC_PER_MSEC)
/* ... held only for messages with copies for this many other Ksocks */
#define KBUS_COALESCE_MIN_COPIES	2
/* ... and only while the reader has fewer messages than this queued */
#define KBUS_COALESCE_MAX_QUEUED	16

/*
 * Allocations that a user's operation causes: charged to the caller's memory
 * cgroup, and failing with ENOMEM (no OOM kill, no warning splat) when the
 * cgroup or the machine is out of memory (spec 14.2).
 */
#define KBUS_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

/* ------------------------------------------------------------------------
 * Internal state. Which lock protects what is documented in kbus_main.c;
 * fields are grouped by their lock.
 */

/*
 * One message as sent. It is immutable once delivered, and shared (by
 * reference count) between every recipient's queue item, the pending write
 * state and the current read state.
 */
struct kbus_msg {
	struct kref ref;
	struct kbus_msg_id id;
	struct kbus_msg_id in_reply_to;
	u32 to;
	u32 from;
	struct kbus_orig_from orig_from;
	struct kbus_orig_from final_to;
	u32 flags;		/* WANT_YOU_TO_REPLY never set here */
	u32 name_len;
	u32 data_len;
	u32 size;		/* ENTIRE() length, for the queued-bytes cap */
	bool item_taken;	/* its own queue item is in use (dev->lock) */
	void *data;		/* data_len bytes (kvmalloc), NULL if none */
	char name[];		/* name_len bytes plus a NUL */
};

struct kbus_ksock;
struct kbus_binding;

/*
 * One distinct binding string of a device, in the device's name table
 * (kbus_dev.names, keyed by the string). All bindings to that exact string
 * hang off it, so routing a message looks up a few strings (the name, and
 * one wildcard form per dot in it) instead of walking every binding.
 */
struct kbus_name {
	struct rhash_head node;
	struct list_head listeners;	/* kbus_binding.name_list, newest first */
	struct kbus_binding *replier;	/* at most one Replier per string */
	u32 users;			/* bindings using this node */
	u32 len;
	struct rcu_head rcu;
	char str[];			/* len bytes plus a NUL */
};

struct kbus_binding {
	struct list_head dev_list;	/* kbus_dev.bindings, newest first */
	struct list_head ksock_list;	/* kbus_ksock.bindings, newest first */
	struct list_head name_list;	/* kbus_name.listeners (Listeners) */
	struct kbus_name *name;
	struct kbus_ksock *ksock;
	u64 seq;			/* bind order: newest '*' Replier wins */
	u32 is_replier;			/* raw value given to BIND */
	bool chosen;			/* scratch flag used by delivery */
};

/*
 * One copy of a message: on a Ksock's queue, as its current read message,
 * or on a Ksock's set-aside list.
 */
struct kbus_qitem {
	struct list_head list;
	struct kbus_msg *msg;
	struct kbus_binding *binding;	/* binding it came through, or NULL */
	u32 flags;			/* flags of this copy */
	u32 gen;			/* set-aside: event generation (Lost) */
	bool embedded;			/* its message's own item */
};

/*
 * A Request id held for a Ksock, in one of the device's id tables:
 * kbus_dev.outstanding (Requests the Ksock sent and awaits an answer to;
 * each is a reserved queue slot) or kbus_dev.unreplied (Requests it popped
 * with WANT_YOU_TO_REPLY and has not answered). Keyed by Ksock and id, so a
 * Reply finds its entry in O(1); duplicates of an id are allowed.
 */
struct kbus_req_key {
	struct kbus_ksock *ksock;
	struct kbus_msg_id id;
};

struct kbus_req {
	struct rhlist_head node;
	struct kbus_req_key key;
	struct list_head link;		/* in the Ksock's own list of such ids */
	u32 requester;			/* unreplied: who asked */
	struct rcu_head rcu;
};

enum kbus_part {
	KBUS_PART_HDR,
	KBUS_PART_NAME,
	KBUS_PART_NPAD,
	KBUS_PART_DATA,
	KBUS_PART_DPAD,
	KBUS_PART_FINAL,
};

/*
 * The user layout of a message in progress (@compat: 4-byte pointers) is
 * that of the syscall that began it: the write() that started it, or the
 * NEXTMSG that made it the current read message.
 */
/*
 * The header images come last in both states: a reset zeroes only what is
 * before them (kbus_write_discard(), kbus_read_drop()), since an image is
 * always written whole before it is read.
 */
struct kbus_write_state {
	bool active;		/* a message is in progress */
	bool compat;		/* written in the 32-bit layout */
	bool complete;
	bool pointy;
	bool copied;		/* pointy name and data copied in */
	enum kbus_part part;
	u32 pos;		/* bytes written of the current part */
	u32 final_guard;
	struct kbus_msg *msg;	/* allocated once the header is valid */
	union {
		/* the header, in the kernel's layout once complete */
		struct kbus_message_header hdr;
		/* compat: the header as written, until complete */
		struct kbus_message_header32 hdr32;
	};
};

struct kbus_read_state {
	struct kbus_qitem *item;	/* current read message, or NULL */
	bool compat;			/* read in the 32-bit layout */
	u32 pos;
	u32 total;			/* ENTIRE() in that layout */
	union {				/* header image handed out */
		struct kbus_message_header hdr;
		struct kbus_message_header32 hdr32;
	};
};

struct kbus_dev;

struct kbus_ksock {
	/* Set at open, then constant */
	struct kbus_dev *dev;
	u32 id;
	struct pid *pid;		/* opener, shown per pid namespace */
	kuid_t uid;			/* opener's euid */
	bool admin;			/* opener had CAP_SYS_ADMIN */
	bool writable;

	/*
	 * Own operations. Every file operation of this Ksock that changes its
	 * private state holds this mutex; user memory is copied only under it
	 * (and under no shared lock), so a stalled copy delays this Ksock only.
	 */
	struct mutex lock;
	struct list_head unreplied;	/* kbus_req.link, newest first */
	u32 unreplied_count;
	u32 unreplied_max;
	struct kbus_read_state rd;
	struct kbus_write_state wr;
	bool sending;			/* also read locklessly by poll */
	struct kbus_msg_id last_sent;

	/* Queue: qlock (a spinlock, taken inside dev->lock or on its own) */
	spinlock_t qlock;
	struct list_head queue;
	u32 queue_count;		/* read locklessly by poll and delivery */
	unsigned long queued_bytes;	/* native word: read locklessly */
	wait_queue_head_t wait;		/* EPOLLIN: queued; EPOLLOUT: pending send */

	/* dev->lock */
	struct list_head list;		/* in kbus_dev.ksocks, newest first */
	struct list_head bindings;	/* kbus_binding.ksock_list */
	u32 max_messages;
	struct list_head outstanding;	/* kbus_req.link */
	u32 out_count;
	u32 out_size;			/* a table capacity, for /proc only */
	u32 out_max;
	struct list_head set_aside;	/* kbus_qitem.list, oldest first */
	u32 set_aside_count;
	bool only_once;
	struct kbus_msg_id last_pushed;

	/* dev->pending_lock */
	struct list_head pending;	/* in kbus_dev.pending while sending */

	/* Wake-up coalescing (kbus_deliver.c): last_send_ns under k->lock */
	u64 last_send_ns;		/* last fan-out SEND, no wait before, or 0 */
	bool received;			/* NEXTMSG or poll since that SEND */
	struct list_head wake_later;	/* in kbus_dev.wake_later (wake_lock) */

	/* Reply spinning (kbus_poll()): lockless, a guess only */
	bool spin_off;			/* a spin missed: sleep until a quick Reply */
	u64 spin_since;			/* when poll last found nothing, or 0 */
};

/* Names a walk of the name table keeps for its replays (kbus_deliver.c) */
#define KBUS_MATCH_KEEP		8
/* Longest message name whose walk the device remembers */
#define KBUS_MEMO_NAME_LEN	64

/*
 * The binding strings that the last complete walk found for one message
 * name. Valid while names_gen is what it was: any string added to or
 * removed from the name table makes it stale, so its pointers are never
 * used after their string is gone.
 */
struct kbus_route_memo {
	u64 gen;			/* kbus_dev.names_gen when made */
	u32 len;			/* of name; 0: nothing remembered */
	u32 found;			/* <= KBUS_MATCH_KEEP */
	struct kbus_name *kept[KBUS_MATCH_KEEP];
	char name[KBUS_MEMO_NAME_LEN];
};

struct kbus_dev {
	struct mutex lock;		/* routing state; see kbus_main.c */
	u32 index;
	struct device *dev;

	struct list_head bindings;	/* newest first: /proc, REPORT */
	struct rhashtable names;	/* struct kbus_name by string */
	u32 nr_star;			/* '*' binding strings in names */
	u32 nr_percent;			/* '%' binding strings in names */
	u64 names_gen;			/* bumped when a string comes or goes */
	struct kbus_route_memo memo;	/* the last walk, for a stream */
	u64 bind_seq;

	struct xarray ksocks;		/* id -> struct kbus_ksock */
	struct list_head ksock_list;	/* newest first: /proc */
	u32 next_ksock_id;
	u32 next_serial;

	struct rhltable outstanding;	/* struct kbus_req */
	struct rhltable unreplied;	/* struct kbus_req */

	bool verbose;
	bool report_binds;

	u32 set_aside_count;		/* entries on all Ksocks' lists */
	u32 event_gen;			/* real events set aside so far */
	bool tragic;

	u32 max_msg_size;		/* read locklessly by write() */

	/* Ksocks in sending state, woken when room may have appeared */
	spinlock_t pending_lock;
	struct list_head pending;
	atomic_t nr_pending;

	/*
	 * Wake-up coalescing. coalesce_ns (dev->lock) is non-zero only while
	 * kbus_deliver() pushes a streaming sender's fan-out: Listeners it
	 * would wake go on wake_later instead, and wake_timer wakes them all at most
	 * that long after the first. wake_lock (irq-safe: the timer) guards
	 * the list; it nests inside dev->lock.
	 */
	u64 coalesce_ns;
	spinlock_t wake_lock;		/* wake_later; irq-safe */
	struct list_head wake_later;	/* kbus_ksock.wake_later */
	struct hrtimer wake_timer;
};

/* Debug output, switched per device by the VERBOSE ioctl */
#define kbus_dbg(kdev, fmt, ...)					\
	do {								\
		const struct kbus_dev *__kd = (kdev);			\
									\
		if (READ_ONCE(__kd->verbose))				\
			dev_dbg(__kd->dev, fmt, ##__VA_ARGS__);		\
	} while (0)

static inline struct kbus_msg *kbus_msg_get(struct kbus_msg *msg)
{
	kref_get(&msg->ref);
	return msg;
}

static inline bool kbus_id_is_zero(const struct kbus_msg_id *id)
{
	return !id->network_id && !id->serial_num;
}

static inline bool kbus_id_eq(const struct kbus_msg_id *a,
			      const struct kbus_msg_id *b)
{
	return a->network_id == b->network_id &&
	       a->serial_num == b->serial_num;
}

/* kbus_main.c */
extern unsigned int kbus_abs_max_message_size;
extern unsigned int kbus_max_queued_bytes;
extern unsigned int kbus_wake_coalesce_us;
u32 kbus_num_devices_now(void);
struct kbus_dev *kbus_dev_get(u32 index);
u32 kbus_next_counter(u32 *counter);

/* kbus_msg.c */
int kbus_caches_init(void);
void kbus_caches_exit(void);
struct kbus_msg *kbus_msg_alloc(u32 name_len, u32 data_len, gfp_t gfp);
void kbus_msg_put(struct kbus_msg *msg);
struct kbus_msg *kbus_msg_synthetic(struct kbus_dev *dev, const char *name,
				    u32 data_len, gfp_t gfp);
struct kbus_qitem *kbus_qitem_alloc(gfp_t gfp);
struct kbus_qitem *kbus_msg_take_item(struct kbus_msg *msg);
void kbus_msg_return_item(struct kbus_msg *msg, struct kbus_qitem *item);
struct kbus_qitem *kbus_answer_alloc(struct kbus_dev *dev, const char *name,
				     gfp_t gfp);
void kbus_qitem_free(struct kbus_qitem *item);
void kbus_check_leaks(void);
void kbus_write_discard(struct kbus_ksock *k);
ssize_t kbus_write_bytes(struct kbus_ksock *k, const char __user *buf,
			 size_t count);
ssize_t kbus_read_bytes(struct kbus_ksock *k, char __user *buf,
			size_t count);
void kbus_read_drop(struct kbus_ksock *k);
int kbus_nextmsg(struct kbus_ksock *k, u32 *len);
u32 kbus_lenleft(const struct kbus_ksock *k);
int kbus_send(struct kbus_ksock *k, struct kbus_msg_id *id);
const char *kbus_part_name(enum kbus_part part);

/* kbus_deliver.c */
int kbus_dev_tables_init(struct kbus_dev *dev);
void kbus_dev_tables_destroy(struct kbus_dev *dev);
bool kbus_name_valid(const char *name, u32 len);
bool kbus_name_is_wildcard(const char *name, u32 len);
int kbus_deliver(struct kbus_dev *dev, struct kbus_ksock *sender,
		 struct kbus_msg *msg, bool from_send);
void kbus_retry_pending(struct kbus_ksock *k);
void kbus_pending_enter(struct kbus_ksock *k);
void kbus_pending_leave(struct kbus_ksock *k);
bool kbus_sender_full(struct kbus_ksock *k);
int kbus_unreplied_add(struct kbus_ksock *k, struct kbus_req *ur,
		       const struct kbus_msg *msg);
void kbus_drain_set_aside(struct kbus_ksock *k);
int kbus_bind(struct kbus_ksock *k, u32 is_replier, const char *name,
	      u32 name_len);
int kbus_unbind(struct kbus_ksock *k, u32 is_replier, const char *name,
		u32 name_len);
u32 kbus_find_replier(struct kbus_dev *dev, const char *name, u32 name_len);
int kbus_report_current_binds(struct kbus_ksock *k);
void kbus_ksock_teardown(struct kbus_ksock *k);
void kbus_wake_writers(struct kbus_dev *dev);
void kbus_wake_init(struct kbus_dev *dev);
void kbus_wake_exit(struct kbus_dev *dev);
u64 kbus_send_coalesce_ns(struct kbus_ksock *k);
void kbus_wake_now(struct kbus_dev *dev);
void kbus_wake_forget(struct kbus_ksock *k);
void kbus_room_released(struct kbus_ksock *k, bool was_full);
bool kbus_full_before_pop(const struct kbus_ksock *k);

/*
 * kbus_main.c: how Reply spins ended, shown in debugfs kbus/reply_spin.
 * A spin that was neither caught nor cut ran out its window.
 */
struct kbus_spin_stats {
	atomic64_t spins;	/* started */
	atomic64_t caught;	/* ended by a queued message */
	atomic64_t cut;		/* ended early: CPU wanted, or a signal */
};

extern struct kbus_spin_stats kbus_spin_stats;

/* kbus_proc.c */
int kbus_proc_init(void);
void kbus_proc_exit(void);

#endif /* KBUS_INTERNAL_H */
