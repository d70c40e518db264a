// SPDX-License-Identifier: GPL-2.0
/*
 * KBUS: messages, the write() assembly state machine, read(), NEXTMSG,
 * LENLEFT and SEND (spec sections 5.1, 5.2, 6).
 *
 * The write and read state machines belong to one Ksock and run under its
 * own lock (kbus_ksock.lock) only: every copy from or to user space happens
 * here, and never under a lock that another Ksock may need (spec 14.3).
 * SEND takes the device lock only after the pointy parts are copied in.
 *
 * A header crosses to and from user space in exactly one place each way:
 * kbus_part_dest() (write) and kbus_read_segment() (read). A task with
 * 4-byte pointers on a 64-bit kernel (compat) gets the 72-byte 32-bit
 * layout there, converted to and from the kernel's own; the layout of a
 * message is that of the syscall that began it (see kbus_write_state).
 */

#include <linux/atomic.h>
#include <linux/bug.h>
#include <linux/lockdep.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "kbus_compat.h"
#include "kbus_internal.h"

static const u32 kbus_end_guard = KBUS_MSG_END_GUARD;
static const u8 kbus_zeros[4];

/*
 * Live messages, checked at unload to catch leaks (queue items come from
 * their own cache, which complains by itself if any are left).
 */
static atomic_t kbus_live_msgs = ATOMIC_INIT(0);
static struct kmem_cache *kbus_qitem_cache;

void kbus_check_leaks(void)
{
	WARN(atomic_read(&kbus_live_msgs), "kbus: %d messages leaked\n",
	     atomic_read(&kbus_live_msgs));
}

int kbus_caches_init(void)
{
	/* SLAB_ACCOUNT: queue items are charged to the sender (spec 14.2) */
	kbus_qitem_cache = KMEM_CACHE(kbus_qitem, SLAB_ACCOUNT);
	return kbus_qitem_cache ? 0 : -ENOMEM;
}

void kbus_caches_exit(void)
{
	kmem_cache_destroy(kbus_qitem_cache);
}

/* ------------------------------------------------------------------------
 * Messages and queue items
 */

/*
 * Data up to this size lives in the message's own allocation: one
 * allocation (and one memory cgroup charge) per message instead of two.
 */
#define KBUS_INLINE_DATA_MAX	512

/* Bytes of a message before its inline data (or its tail) */
static size_t kbus_msg_head(u32 name_len)
{
	/* name_len <= KBUS_MAX_NAME_LEN, so this cannot overflow */
	return ALIGN(sizeof(struct kbus_msg) + name_len + 1, 8);
}

/*
 * Where a message's own queue item lives: after its head and its inline
 * data. Most messages have one recipient (a Listener, the Replier, the
 * requester a Reply goes to), so the first copy queued costs no allocation
 * of its own (kbus_msg_take_item()).
 */
static size_t kbus_msg_item_offset(u32 name_len, u32 data_len)
{
	size_t off = kbus_msg_head(name_len);

	if (data_len <= KBUS_INLINE_DATA_MAX)
		off += ALIGN(data_len, 8);
	return off;
}

static struct kbus_qitem *kbus_msg_item(struct kbus_msg *msg)
{
	return (struct kbus_qitem *)((u8 *)msg +
		kbus_msg_item_offset(msg->name_len, msg->data_len));
}

struct kbus_msg *kbus_msg_alloc(u32 name_len, u32 data_len, gfp_t gfp)
{
	size_t head = kbus_msg_head(name_len);
	size_t item_off = kbus_msg_item_offset(name_len, data_len);
	struct kbus_qitem *item;
	struct kbus_msg *msg;

	msg = kmalloc(item_off + sizeof(*item), gfp);
	if (!msg)
		return NULL;
	/* Every creator writes the name_len bytes of the name */
	memset(msg, 0, sizeof(*msg));
	memset(msg->name + name_len, 0,
	       (u8 *)msg + head - (u8 *)(msg->name + name_len));
	item = (struct kbus_qitem *)((u8 *)msg + item_off);
	memset(item, 0, sizeof(*item));
	INIT_LIST_HEAD(&item->list);
	item->embedded = true;
	if (data_len > KBUS_INLINE_DATA_MAX) {
		msg->data = kvmalloc(data_len, gfp);
		if (!msg->data) {
			kfree(msg);
			return NULL;
		}
	} else if (data_len) {
		msg->data = (u8 *)msg + head;
	}
	kref_init(&msg->ref);
	atomic_inc(&kbus_live_msgs);
	msg->name_len = name_len;
	msg->data_len = data_len;
	msg->size = (u32)kbus_entire_len(name_len, data_len);
	return msg;
}

/*
 * The message's own queue item, if no copy of it uses that yet; NULL
 * otherwise. An unused item goes back with kbus_msg_return_item().
 */
struct kbus_qitem *kbus_msg_take_item(struct kbus_msg *msg)
{
	if (msg->item_taken)
		return NULL;
	msg->item_taken = true;
	return kbus_msg_item(msg);
}

void kbus_msg_return_item(struct kbus_msg *msg, struct kbus_qitem *item)
{
	WARN_ON_ONCE(item != kbus_msg_item(msg) || item->msg);
	msg->item_taken = false;
}

static void kbus_msg_release(struct kref *ref)
{
	struct kbus_msg *msg = container_of(ref, struct kbus_msg, ref);

	if (msg->data_len > KBUS_INLINE_DATA_MAX)
		kvfree(msg->data);
	kfree(msg);
	atomic_dec(&kbus_live_msgs);
}

void kbus_msg_put(struct kbus_msg *msg)
{
	if (msg)
		kref_put(&msg->ref, kbus_msg_release);
}

/* Name @msg as KBUS's own message @name; consumes a serial number. */
static void kbus_msg_make_synthetic(struct kbus_dev *dev, struct kbus_msg *msg,
				    const char *name)
{
	lockdep_assert_held(&dev->lock);
	memcpy(msg->name, name, msg->name_len);
	msg->id.serial_num = kbus_next_counter(&dev->next_serial);
	msg->flags = KBUS_BIT_SYNTHETIC;
}

/* A message generated by KBUS itself; consumes a serial number. */
struct kbus_msg *kbus_msg_synthetic(struct kbus_dev *dev, const char *name,
				    u32 data_len, gfp_t gfp)
{
	struct kbus_msg *msg = kbus_msg_alloc(strlen(name), data_len, gfp);

	if (msg)
		kbus_msg_make_synthetic(dev, msg, name);
	return msg;
}

struct kbus_qitem *kbus_qitem_alloc(gfp_t gfp)
{
	struct kbus_qitem *item = kmem_cache_zalloc(kbus_qitem_cache, gfp);

	if (!item)
		return NULL;
	INIT_LIST_HEAD(&item->list);
	return item;
}

void kbus_qitem_free(struct kbus_qitem *item)
{
	struct kbus_msg *msg;

	if (!item)
		return;
	msg = item->msg;
	/* An embedded item goes with its message, at the last reference */
	if (!item->embedded)
		kmem_cache_free(kbus_qitem_cache, item);
	kbus_msg_put(msg);
}

/*
 * A synthetic answer (no data) in its own queue item: an answer goes to
 * exactly one Ksock, so the item ends up holding the only reference, and
 * freeing the item frees both. A close that answers many Requests then
 * allocates once per answer.
 */
struct kbus_qitem *kbus_answer_alloc(struct kbus_dev *dev, const char *name,
				     gfp_t gfp)
{
	struct kbus_qitem *item;
	struct kbus_msg *msg;

	msg = kbus_msg_alloc(strlen(name), 0, gfp);
	if (!msg)
		return NULL;
	kbus_msg_make_synthetic(dev, msg, name);
	item = kbus_msg_take_item(msg);
	item->msg = msg;
	return item;
}

/* ------------------------------------------------------------------------
 * The 32-bit header layout (compat, spec 3.3)
 */

static void kbus_hdr_to32(struct kbus_message_header32 *h32,
			  const struct kbus_message_header *h)
{
	h32->start_guard = h->start_guard;
	h32->id = h->id;
	h32->in_reply_to = h->in_reply_to;
	h32->to = h->to;
	h32->from = h->from;
	h32->orig_from = h->orig_from;
	h32->final_to = h->final_to;
	h32->extra = h->extra;
	h32->flags = h->flags;
	h32->name_len = h->name_len;
	h32->data_len = h->data_len;
	h32->name = kbus_ptr_to_compat(h->name);
	h32->data = kbus_ptr_to_compat(h->data);
	h32->end_guard = h->end_guard;
}

static void kbus_hdr_from32(struct kbus_message_header *h,
			    const struct kbus_message_header32 *h32)
{
	memset(h, 0, sizeof(*h));
	h->start_guard = h32->start_guard;
	h->id = h32->id;
	h->in_reply_to = h32->in_reply_to;
	h->to = h32->to;
	h->from = h32->from;
	h->orig_from = h32->orig_from;
	h->final_to = h32->final_to;
	h->extra = h32->extra;
	h->flags = h32->flags;
	h->name_len = h32->name_len;
	h->data_len = h32->data_len;
	h->name = kbus_compat_ptr(h32->name);
	h->data = kbus_compat_ptr(h32->data);
	h->end_guard = h32->end_guard;
}

/* ------------------------------------------------------------------------
 * write(): assembling the outgoing message (spec 5.1)
 */

const char *kbus_part_name(enum kbus_part part)
{
	static const char * const names[] = {
		[KBUS_PART_HDR] = "HDR",
		[KBUS_PART_NAME] = "NAME",
		[KBUS_PART_NPAD] = "NPAD",
		[KBUS_PART_DATA] = "DATA",
		[KBUS_PART_DPAD] = "DPAD",
		[KBUS_PART_FINAL] = "FINAL",
	};

	return part <= KBUS_PART_FINAL ? names[part] : "?";
}

/* Drop the outgoing message, whatever its state, and leave sending state. */
void kbus_write_discard(struct kbus_ksock *k)
{
	lockdep_assert_held(&k->lock);
	kbus_pending_leave(k);
	kbus_msg_put(k->wr.msg);
	memset(&k->wr, 0, offsetof(struct kbus_write_state, hdr));
	k->wr.part = KBUS_PART_HDR;
}

static u32 kbus_part_len(const struct kbus_write_state *wr)
{
	const struct kbus_message_header *h = &wr->hdr;

	switch (wr->part) {
	case KBUS_PART_HDR:
		return kbus_hdr_len(wr->compat);
	case KBUS_PART_NAME:
		return h->name_len;
	case KBUS_PART_NPAD:
		return kbus_padded_name_len(h->name_len) - h->name_len;
	case KBUS_PART_DATA:
		return h->data_len;
	case KBUS_PART_DPAD:
		return (u32)(kbus_padded_data_len(h->data_len) - h->data_len);
	default:
		return sizeof(u32);
	}
}

/*
 * Where the bytes of the current part go; NULL for ignored padding. A
 * compat header goes to its own image until complete (kbus_header_done()).
 */
static void *kbus_part_dest(struct kbus_write_state *wr)
{
	switch (wr->part) {
	case KBUS_PART_HDR:
		if (wr->compat)
			return (u8 *)&wr->hdr32 + wr->pos;
		return (u8 *)&wr->hdr + wr->pos;
	case KBUS_PART_NAME:
		return wr->msg->name + wr->pos;
	case KBUS_PART_DATA:
		return (u8 *)wr->msg->data + wr->pos;
	case KBUS_PART_FINAL:
		return (u8 *)&wr->final_guard + wr->pos;
	default:
		return NULL;
	}
}

/* Header checks, in the order of spec 5.1 step 4. */
static int kbus_check_header(const struct kbus_ksock *k)
{
	const struct kbus_message_header *h = &k->wr.hdr;

	if (h->start_guard != KBUS_MSG_START_GUARD ||
	    h->end_guard != KBUS_MSG_END_GUARD)
		return -EINVAL;
	if (!h->name_len)
		return -EINVAL;
	if (h->name_len > KBUS_MAX_NAME_LEN)
		return -ENAMETOOLONG;
	if (!h->name && h->data)
		return -EINVAL;
	if (h->name && !h->data && h->data_len)
		return -EINVAL;
	if (!h->data_len && h->data)
		return -EINVAL;
	if ((h->flags & KBUS_BIT_ALL_OR_WAIT) &&
	    (h->flags & KBUS_BIT_ALL_OR_FAIL))
		return -EINVAL;
	/* Measured in the writer's layout, as a 32-bit kernel would */
	if (kbus_layout_entire_len(k->wr.compat, h->name_len, h->data_len) >
	    READ_ONCE(k->dev->max_msg_size))
		return -EMSGSIZE;
	return 0;
}

static int kbus_header_done(struct kbus_ksock *k)
{
	struct kbus_write_state *wr = &k->wr;
	struct kbus_message_header32 h32;
	int err;

	if (wr->compat) {
		h32 = wr->hdr32;
		kbus_hdr_from32(&wr->hdr, &h32);
	}
	err = kbus_check_header(k);
	if (err)
		return err;
	wr->msg = kbus_msg_alloc(wr->hdr.name_len, wr->hdr.data_len, KBUS_GFP);
	if (!wr->msg)
		return -ENOMEM;
	wr->pointy = !!wr->hdr.name;
	if (wr->pointy) {
		wr->complete = true;
	} else {
		wr->part = KBUS_PART_NAME;
		wr->pos = 0;
	}
	return 0;
}

/* The current part has been filled: check it and move to the next one. */
static int kbus_part_done(struct kbus_ksock *k)
{
	struct kbus_write_state *wr = &k->wr;
	struct kbus_msg *msg = wr->msg;

	switch (wr->part) {
	case KBUS_PART_HDR:
		return kbus_header_done(k);
	case KBUS_PART_NAME:
		if (!kbus_name_valid(msg->name, msg->name_len) ||
		    kbus_name_is_wildcard(msg->name, msg->name_len))
			return -EBADMSG;
		break;
	case KBUS_PART_FINAL:
		if (wr->final_guard != KBUS_MSG_END_GUARD)
			return -EINVAL;
		wr->complete = true;
		return 0;
	default:
		break;
	}
	do {
		wr->part++;
		wr->pos = 0;
	} while (wr->part != KBUS_PART_FINAL && !kbus_part_len(wr));
	return 0;
}

static int kbus_write_parts(struct kbus_ksock *k, const char __user *buf,
			    size_t count)
{
	struct kbus_write_state *wr = &k->wr;
	size_t done = 0;
	void *dest;
	u32 n;
	int err;

	while (done < count) {
		if (wr->complete)
			return -EMSGSIZE;
		n = min_t(size_t, kbus_part_len(wr) - wr->pos, count - done);
		dest = kbus_part_dest(wr);
		if (dest && copy_from_user(dest, buf + done, n))
			return -EFAULT;
		wr->pos += n;
		done += n;
		if (wr->pos == kbus_part_len(wr)) {
			err = kbus_part_done(k);
			if (err)
				return err;
		}
	}
	return 0;
}

ssize_t kbus_write_bytes(struct kbus_ksock *k, const char __user *buf,
			 size_t count)
{
	int err;

	lockdep_assert_held(&k->lock);
	if (k->sending)
		return -EALREADY;
	if (!k->wr.active) {
		kbus_write_discard(k);
		k->wr.active = true;
		k->wr.compat = kbus_compat_task();
	}
	err = kbus_write_parts(k, buf, count);
	if (err) {
		kbus_write_discard(k);
		return err;
	}
	return count;
}

/* ------------------------------------------------------------------------
 * Receiving (spec 6)
 */

void kbus_read_drop(struct kbus_ksock *k)
{
	kbus_qitem_free(k->rd.item);
	memset(&k->rd, 0, offsetof(struct kbus_read_state, hdr));
}

/* The header a reader gets for @item, padding zeroed (it is copied out) */
static void kbus_read_hdr(struct kbus_message_header *h,
			  const struct kbus_qitem *item)
{
	const struct kbus_msg *m = item->msg;

	memset(h, 0, sizeof(*h));
	h->start_guard = KBUS_MSG_START_GUARD;
	h->id = m->id;
	h->in_reply_to = m->in_reply_to;
	h->to = m->to;
	h->from = m->from;
	h->orig_from = m->orig_from;
	h->final_to = m->final_to;
	h->flags = item->flags;
	h->name_len = m->name_len;
	h->data_len = m->data_len;
	h->end_guard = KBUS_MSG_END_GUARD;
}

/* @item becomes the current read message, in the caller's layout. */
static void kbus_read_start(struct kbus_ksock *k, struct kbus_qitem *item)
{
	const struct kbus_msg *m = item->msg;
	struct kbus_read_state *rd = &k->rd;
	struct kbus_message_header h;

	rd->compat = kbus_compat_task();
	if (rd->compat) {
		kbus_read_hdr(&h, item);
		kbus_hdr_to32(&rd->hdr32, &h);
	} else {
		kbus_read_hdr(&rd->hdr, item);
	}
	rd->item = item;
	rd->pos = 0;
	rd->total = (u32)kbus_layout_entire_len(rd->compat, m->name_len,
						m->data_len);
}

/* The contiguous source bytes at the current read position. */
static const void *kbus_read_segment(const struct kbus_read_state *rd,
				     u32 *len)
{
	const struct kbus_msg *m = rd->item->msg;
	u32 hlen = kbus_hdr_len(rd->compat);
	u32 pn = kbus_padded_name_len(m->name_len);
	u32 pd = (u32)kbus_padded_data_len(m->data_len);
	u32 pos = rd->pos;

	if (pos < hlen) {
		*len = hlen - pos;
		if (rd->compat)
			return (const u8 *)&rd->hdr32 + pos;
		return (const u8 *)&rd->hdr + pos;
	}
	pos -= hlen;
	if (pos < m->name_len) {
		*len = m->name_len - pos;
		return m->name + pos;
	}
	if (pos < pn) {
		*len = pn - pos;
		return kbus_zeros;
	}
	pos -= pn;
	if (pos < m->data_len) {
		*len = m->data_len - pos;
		return (const u8 *)m->data + pos;
	}
	if (pos < pd) {
		*len = pd - pos;
		return kbus_zeros;
	}
	pos -= pd;
	*len = sizeof(kbus_end_guard) - pos;
	return (const u8 *)&kbus_end_guard + pos;
}

ssize_t kbus_read_bytes(struct kbus_ksock *k, char __user *buf, size_t count)
{
	struct kbus_read_state *rd = &k->rd;
	const void *src;
	size_t done = 0;
	unsigned long left;
	u32 len, n;

	lockdep_assert_held(&k->lock);
	if (!rd->item)
		return 0;
	while (done < count && rd->pos < rd->total) {
		src = kbus_read_segment(rd, &len);
		n = min_t(size_t, len, count - done);
		left = copy_to_user(buf + done, src, n);
		rd->pos += n - left;
		done += n - left;
		/* Spec 14.7: bytes already copied are reported, not lost */
		if (left)
			return done ? done : -EFAULT;
	}
	if (rd->pos == rd->total)
		kbus_read_drop(k);
	return done;
}

u32 kbus_lenleft(const struct kbus_ksock *k)
{
	return k->rd.item ? k->rd.total - k->rd.pos : 0;
}

/*
 * The head of @k's queue, with qlock held on return. A Request that makes
 * @k owe an answer needs an unreplied entry, allocated (without the
 * spinlock) into @spare before the head is taken.
 */
static struct kbus_qitem *kbus_queue_head(struct kbus_ksock *k,
					  struct kbus_req **spare)
{
	struct kbus_qitem *item;

	for (;;) {
		spin_lock(&k->qlock);
		item = list_first_entry_or_null(&k->queue, struct kbus_qitem,
						list);
		if (!item || !(item->flags & KBUS_BIT_WANT_YOU_TO_REPLY) ||
		    *spare)
			return item;
		spin_unlock(&k->qlock);
		*spare = kmalloc(sizeof(**spare), KBUS_GFP);
		if (!*spare)
			return ERR_PTR(-ENOMEM);
	}
}

/*
 * NEXTMSG (spec 6.1). Returns 1 and the entire length if a message was
 * popped, 0 (and length 0) if the queue was empty. Takes only this Ksock's
 * locks, unless set-aside entries or a waiting sender need the device.
 */
int kbus_nextmsg(struct kbus_ksock *k, u32 *len)
{
	struct kbus_req *spare = NULL;
	struct kbus_qitem *item;
	bool was_full;
	int err;

	lockdep_assert_held(&k->lock);
	WRITE_ONCE(k->received, true);
	kbus_read_drop(k);
	*len = 0;
	item = kbus_queue_head(k, &spare);
	if (IS_ERR(item))
		return PTR_ERR(item);
	if (!item) {
		spin_unlock(&k->qlock);
		kfree(spare);
		return 0;
	}
	if (item->flags & KBUS_BIT_WANT_YOU_TO_REPLY) {
		err = kbus_unreplied_add(k, spare, item->msg);
		if (err) {
			spin_unlock(&k->qlock);
			kfree(spare);
			return err;
		}
		spare = NULL;
	}
	was_full = kbus_full_before_pop(k);
	list_del_init(&item->list);
	WRITE_ONCE(k->queue_count, k->queue_count - 1);
	WRITE_ONCE(k->queued_bytes, k->queued_bytes - item->msg->size);
	item->binding = NULL;
	spin_unlock(&k->qlock);
	kfree(spare);

	kbus_read_start(k, item);
	*len = k->rd.total;
	kbus_room_released(k, was_full);
	return 1;
}

/* ------------------------------------------------------------------------
 * SEND (spec 5.2)
 */

static void kbus_send_prepare(struct kbus_ksock *k)
{
	const struct kbus_message_header *h = &k->wr.hdr;
	struct kbus_msg *m = k->wr.msg;

	m->id = h->id;
	m->in_reply_to = h->in_reply_to;
	m->to = h->to;
	m->orig_from = h->orig_from;
	m->final_to = h->final_to;
	m->flags = h->flags &
		   ~(KBUS_BIT_SYNTHETIC | KBUS_BIT_WANT_YOU_TO_REPLY);
}

static int kbus_send_copy_pointy(struct kbus_ksock *k)
{
	struct kbus_write_state *wr = &k->wr;
	struct kbus_msg *m = wr->msg;

	/*
	 * Copy exactly name_len bytes. The original also read the terminator
	 * position (its value ignored); not touching it lets a caller pass a
	 * name that ends at the end of a mapping, e.g. a Rust &str slice.
	 */
	if (copy_from_user(m->name, wr->hdr.name, m->name_len))
		return -EFAULT;
	m->name[m->name_len] = '\0';
	if (!kbus_name_valid(m->name, m->name_len) ||
	    kbus_name_is_wildcard(m->name, m->name_len))
		return -EBADMSG;
	if (m->data_len && copy_from_user(m->data, wr->hdr.data, m->data_len))
		return -EFAULT;
	wr->copied = true;
	return 0;
}

/*
 * Send the outgoing message; k->lock held. On 0 and -EAGAIN @id receives
 * the message id, which the caller copies to user space. The device lock
 * is taken only once the message is complete in kernel memory.
 */
int kbus_send(struct kbus_ksock *k, struct kbus_msg_id *id)
{
	struct kbus_write_state *wr = &k->wr;
	struct kbus_msg *msg = wr->msg;
	struct kbus_dev *dev = k->dev;
	int err;

	lockdep_assert_held(&k->lock);
	if (!wr->active)
		return -ENOMSG;
	if (!wr->complete) {
		kbus_write_discard(k);
		return -EINVAL;
	}
	if (!k->sending)
		kbus_send_prepare(k);
	if (wr->pointy && !wr->copied) {
		err = kbus_send_copy_pointy(k);
		if (err) {
			kbus_write_discard(k);
			return err;
		}
	}
	/* Interrupted here, the message is intact and SEND restarts */
	if (mutex_lock_interruptible(&dev->lock))
		return -ERESTARTSYS;
	if ((msg->flags & KBUS_BIT_WANT_A_REPLY) && kbus_sender_full(k)) {
		mutex_unlock(&dev->lock);
		kbus_write_discard(k);
		return -ENOLCK;
	}
	msg->from = k->id;
	if (!k->sending && !msg->id.network_id)
		msg->id.serial_num = kbus_next_counter(&dev->next_serial);
	k->last_sent = msg->id;

	err = kbus_deliver(dev, k, msg, true);
	*id = msg->id;
	kbus_dbg(dev, "ksock %u send [%u:%u] '%s': %d\n", k->id,
		 msg->id.network_id, msg->id.serial_num, msg->name, err);
	mutex_unlock(&dev->lock);
	if (err == -EAGAIN) {
		/* We wait for full Listeners: they must not wait for us */
		kbus_wake_now(dev);
		kbus_pending_enter(k);
	} else {
		kbus_write_discard(k);
	}
	return err;
}
