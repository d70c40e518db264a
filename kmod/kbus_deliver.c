// SPDX-License-Identifier: GPL-2.0
/*
 * KBUS: names, the routing tables, delivery, synthetic messages, Replier
 * Bind Events and the set-aside lists (spec sections 4, 5.5, 5.9, 5.10, 7,
 * 14). The lock rules are at the top of kbus_main.c.
 *
 * Routing. Every distinct binding string of a device is one struct
 * kbus_name in the device's name table (an rhashtable keyed by the string);
 * the bindings to that string hang off it. A message name matches:
 *   - the binding string equal to it,
 *   - its '%' form: everything up to its last dot, then '%',
 *   - its '*' forms: everything up to each of its dots, then '*'.
 * So routing costs one lookup per dot of the name (the wildcard lookups are
 * skipped while the device has no wildcard binding of that kind) plus the
 * matching bindings, whatever else is bound (spec 14.5).
 *
 * Request ids. Requests a Ksock awaits an answer to (its reservations) and
 * Requests it has popped but not answered are entries of the device's two
 * id tables (rhltables keyed by Ksock and id), each also on the Ksock's own
 * list, so a Reply finds its entry in O(1) and a close walks only its own.
 *
 * Set-aside lists (spec 7.6 with decision 13 of section 13, and 14.4):
 * a bind event that cannot be delivered to every Listener is put on each
 * Listener's own set-aside list, one entry per Listener binding, tied to
 * the binding it came through. Such entries are the logical tail of that
 * Ksock's queue:
 *  - "Drain": whenever the Ksock may have gained room, its entries move,
 *    oldest first, to the back of its queue for as long as the queue is not
 *    full. Every full check for an ordinary delivery drains first and counts
 *    a Ksock that still holds entries as full, so nothing newer overtakes.
 *  - "Flush": before a message that is queued without an ordinary full
 *    check (a Reply or synthetic answer using a reserved slot) all of the
 *    Ksock's entries move to its queue first, so they are read before it.
 *  - Removal: an entry is removed exactly when the binding it came through
 *    is removed (UNBIND of that binding, or close of its Ksock).
 *  - Moves use the Listener path, so MSGONLYONCE applies to them.
 */

#include <linux/ctype.h>
#include <linux/cred.h>
#include <linux/hrtimer.h>
#include <linux/jhash.h>
#include <linux/lockdep.h>
#include <linux/minmax.h>
#include <linux/poll.h>
#include <linux/rhashtable.h>
#include <linux/sched/clock.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "kbus_compat.h"
#include "kbus_internal.h"

enum kbus_why {
	KBUS_FOR_SENDER,	/* Reply to the requester */
	KBUS_FOR_ANSWER,	/* synthetic answer; the caller releases */
	KBUS_FOR_REPLIER,
	KBUS_FOR_LISTENER,
};

/*
 * Allocations that must not fail for a user's mistake (answers owed to
 * others, set-aside bind events): charged, but without __GFP_RETRY_MAYFAIL,
 * so a cgroup at its limit reclaims or kills within itself before they fail.
 */
#define KBUS_GFP_OWED	(GFP_KERNEL_ACCOUNT | __GFP_NOWARN)

/* ------------------------------------------------------------------------
 * Names (spec 4)
 */

bool kbus_name_valid(const char *name, u32 n)
{
	u32 m = n, last_dot = 1, i;

	if (n < KBUS_MIN_NAME_LEN || name[0] != '$' || name[1] != '.')
		return false;
	if (name[n - 2] == '.' && (name[n - 1] == '*' || name[n - 1] == '%'))
		m = n - 2;
	if (name[m - 1] == '.')
		return false;
	for (i = 2; i < m; i++) {
		if (name[i] == '.') {
			if (last_dot == i - 1)
				return false;
			last_dot = i;
		} else if (!isalnum(name[i])) {
			return false;
		}
	}
	return true;
}

bool kbus_name_is_wildcard(const char *name, u32 n)
{
	return n && (name[n - 1] == '*' || name[n - 1] == '%');
}

/* ------------------------------------------------------------------------
 * The name table
 *
 * A key is a string given as all but its last byte plus that byte, so that
 * the wildcard forms of a message name can be looked up without building
 * them: "$.a.b" looks up ("$.a.", '%') and ("$.", '*'), ("$.a.", '*').
 */

struct kbus_name_key {
	const char *base;
	u32 base_len;
	u32 last;
};

static u32 kbus_name_hash(const char *base, u32 base_len, u8 last, u32 seed)
{
	return jhash_1word(last, jhash(base, base_len, seed));
}

static u32 kbus_name_key_hashfn(const void *data, u32 len, u32 seed)
{
	const struct kbus_name_key *key = data;

	return kbus_name_hash(key->base, key->base_len, key->last, seed);
}

static u32 kbus_name_obj_hashfn(const void *data, u32 len, u32 seed)
{
	const struct kbus_name *n = data;

	return kbus_name_hash(n->str, n->len - 1, n->str[n->len - 1], seed);
}

static int kbus_name_cmpfn(struct rhashtable_compare_arg *arg,
			   const void *obj)
{
	const struct kbus_name_key *key = arg->key;
	const struct kbus_name *n = obj;

	return n->len != key->base_len + 1 ||
	       (u8)n->str[key->base_len] != key->last ||
	       memcmp(n->str, key->base, key->base_len);
}

static const struct rhashtable_params kbus_name_params = {
	.head_offset = offsetof(struct kbus_name, node),
	.hashfn = kbus_name_key_hashfn,
	.obj_hashfn = kbus_name_obj_hashfn,
	.obj_cmpfn = kbus_name_cmpfn,
	.automatic_shrinking = true,
};

static const struct rhashtable_params kbus_req_params = {
	.head_offset = offsetof(struct kbus_req, node),
	.key_offset = offsetof(struct kbus_req, key),
	.key_len = sizeof(struct kbus_req_key),
	.automatic_shrinking = true,
};

int kbus_dev_tables_init(struct kbus_dev *dev)
{
	int err;

	err = rhashtable_init(&dev->names, &kbus_name_params);
	if (err)
		return err;
	err = rhltable_init(&dev->outstanding, &kbus_req_params);
	if (err)
		goto out_names;
	err = rhltable_init(&dev->unreplied, &kbus_req_params);
	if (err)
		goto out_outstanding;
	return 0;

out_outstanding:
	rhltable_destroy(&dev->outstanding);
out_names:
	rhashtable_destroy(&dev->names);
	return err;
}

/* Unload: no Ksock is open, so every table is empty. */
void kbus_dev_tables_destroy(struct kbus_dev *dev)
{
	rhltable_destroy(&dev->unreplied);
	rhltable_destroy(&dev->outstanding);
	rhashtable_destroy(&dev->names);
}

static struct kbus_name *kbus_name_lookup(struct kbus_dev *dev,
					  const char *base, u32 base_len,
					  u8 last)
{
	struct kbus_name_key key = {
		.base = base, .base_len = base_len, .last = last,
	};

	lockdep_assert_held(&dev->lock);
	return rhashtable_lookup_fast(&dev->names, &key, kbus_name_params);
}

static struct kbus_name *kbus_name_find(struct kbus_dev *dev,
					const char *name, u32 len)
{
	return kbus_name_lookup(dev, name, len - 1, name[len - 1]);
}

static u32 *kbus_wildcard_counter(struct kbus_dev *dev,
				  const struct kbus_name *n)
{
	switch (n->str[n->len - 1]) {
	case '*':
		return &dev->nr_star;
	case '%':
		return &dev->nr_percent;
	default:
		return NULL;
	}
}

/* The node of @name, created (with no users) if it does not exist yet. */
static struct kbus_name *kbus_name_get(struct kbus_dev *dev,
				       const char *name, u32 len)
{
	struct kbus_name *n = kbus_name_find(dev, name, len);
	u32 *wild;
	int err;

	if (n)
		return n;
	n = kzalloc(struct_size(n, str, (size_t)len + 1), KBUS_GFP);
	if (!n)
		return ERR_PTR(-ENOMEM);
	INIT_LIST_HEAD(&n->listeners);
	n->len = len;
	memcpy(n->str, name, len);
	err = rhashtable_insert_fast(&dev->names, &n->node, kbus_name_params);
	if (err) {
		kfree(n);
		return ERR_PTR(-ENOMEM);
	}
	dev->names_gen++;
	wild = kbus_wildcard_counter(dev, n);
	if (wild)
		(*wild)++;
	return n;
}

/* Drop @n from the table once no binding uses it. */
static void kbus_name_put(struct kbus_dev *dev, struct kbus_name *n)
{
	u32 *wild;

	lockdep_assert_held(&dev->lock);
	if (n->users)
		return;
	wild = kbus_wildcard_counter(dev, n);
	if (wild)
		(*wild)--;
	rhashtable_remove_fast(&dev->names, &n->node, kbus_name_params);
	dev->names_gen++;
	kfree_rcu(n, rcu);
}

/*
 * Iterates over the binding strings that match a message name. A delivery
 * walks them up to three times (Replier, Listeners, pushes): the first walk
 * keeps what it finds (up to KBUS_MATCH_KEEP), and kbus_match_rewind()
 * then replays that instead of hashing again. The name table must not
 * change in between: the caller holds dev->lock throughout.
 *
 * The device also remembers the last complete walk (kbus_dev.memo): a
 * stream of messages with one name, the common case, then hashes nothing
 * until a binding string comes or goes.
 */
struct kbus_match {
	const char *name;
	u32 len;
	u32 pos;		/* where to look for the next dot ('*' stage) */
	int stage;
	bool ended;		/* a walk reached its end */
	bool replay;		/* serve kept[] instead of walking */
	u32 found;		/* names found by the walk (may exceed KEEP) */
	u32 next;		/* the next kept[] to replay */
	struct kbus_name *kept[KBUS_MATCH_KEEP];
};

/* Is the device's last walk one for @m's name, and still valid? */
static bool kbus_memo_matches(const struct kbus_dev *dev,
			      const struct kbus_match *m)
{
	const struct kbus_route_memo *memo = &dev->memo;

	return memo->len == m->len && memo->gen == dev->names_gen &&
	       !memcmp(memo->name, m->name, m->len);
}

/* Remember @m's complete walk for the next message of the same name */
static void kbus_memo_store(struct kbus_dev *dev, const struct kbus_match *m)
{
	struct kbus_route_memo *memo = &dev->memo;

	if (m->len > KBUS_MEMO_NAME_LEN || m->found > KBUS_MATCH_KEEP)
		return;
	memo->gen = dev->names_gen;
	memo->len = m->len;
	memo->found = m->found;
	memcpy(memo->kept, m->kept, m->found * sizeof(m->kept[0]));
	memcpy(memo->name, m->name, m->len);
}

static void kbus_match_init(struct kbus_dev *dev, struct kbus_match *m,
			    const struct kbus_msg *msg)
{
	lockdep_assert_held(&dev->lock);
	m->name = msg->name;
	m->len = msg->name_len;
	m->pos = 0;
	m->stage = 0;
	if (kbus_memo_matches(dev, m)) {
		/* A copy: a nested walk may replace the memo meanwhile */
		m->found = dev->memo.found;
		memcpy(m->kept, dev->memo.kept, m->found * sizeof(m->kept[0]));
		m->ended = true;
		m->replay = true;
		m->next = 0;
		return;
	}
	m->ended = false;
	m->replay = false;
	m->found = 0;
}

/* Start again: replay the first walk if it ended and kept every name. */
static void kbus_match_rewind(struct kbus_match *m)
{
	if (m->ended && m->found <= KBUS_MATCH_KEEP) {
		m->replay = true;
		m->next = 0;
		return;
	}
	m->pos = 0;
	m->stage = 0;
	m->ended = false;
	m->found = 0;
}

static u32 kbus_last_dot(const char *name, u32 len)
{
	while (len--)
		if (name[len] == '.')
			return len;
	return 0;
}

static struct kbus_name *kbus_match_walk(struct kbus_dev *dev,
					 struct kbus_match *m)
{
	struct kbus_name *n;
	const char *dot;

	for (;;) {
		switch (m->stage) {
		case 0:
			m->stage = 1;
			n = kbus_name_find(dev, m->name, m->len);
			break;
		case 1:
			m->stage = 2;
			if (!dev->nr_percent)
				continue;
			n = kbus_name_lookup(dev, m->name,
					     kbus_last_dot(m->name, m->len) + 1,
					     '%');
			break;
		default:
			if (!dev->nr_star)
				return NULL;
			dot = memchr(m->name + m->pos, '.', m->len - m->pos);
			if (!dot)
				return NULL;
			m->pos = dot - m->name + 1;
			n = kbus_name_lookup(dev, m->name, m->pos, '*');
			break;
		}
		if (n)
			return n;
	}
}

static struct kbus_name *kbus_match_next(struct kbus_dev *dev,
					 struct kbus_match *m)
{
	struct kbus_name *n;

	if (m->replay)
		return m->next < m->found ? m->kept[m->next++] : NULL;
	n = kbus_match_walk(dev, m);
	if (!n) {
		m->ended = true;
		kbus_memo_store(dev, m);
		return NULL;
	}
	if (m->found < KBUS_MATCH_KEEP)
		m->kept[m->found] = n;
	m->found++;
	return n;
}

/* ------------------------------------------------------------------------
 * Ksocks and wake-ups
 */

static struct kbus_ksock *kbus_find_ksock(struct kbus_dev *dev, u32 id)
{
	lockdep_assert_held(&dev->lock);
	return xa_load(&dev->ksocks, id);
}

/*
 * Wake the Ksocks in sending state, whose pending send may now get through.
 * Costs one atomic read when nobody waits, which is almost always.
 */
void kbus_wake_writers(struct kbus_dev *dev)
{
	struct kbus_ksock *k;

	/* Pairs with the queue updates of our callers (see kbus_nextmsg) */
	smp_mb();
	if (!atomic_read(&dev->nr_pending))
		return;
	spin_lock(&dev->pending_lock);
	list_for_each_entry(k, &dev->pending, pending)
		wake_up_interruptible_poll(&k->wait, EPOLLOUT | EPOLLWRNORM);
	spin_unlock(&dev->pending_lock);
}

/* Enter sending state (SEND gave EAGAIN); k->lock held. */
void kbus_pending_enter(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;

	lockdep_assert_held(&k->lock);
	if (k->sending)
		return;
	spin_lock(&dev->pending_lock);
	list_add_tail(&k->pending, &dev->pending);
	atomic_inc(&dev->nr_pending);
	spin_unlock(&dev->pending_lock);
	WRITE_ONCE(k->sending, true);
}

void kbus_pending_leave(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;

	lockdep_assert_held(&k->lock);
	if (!k->sending)
		return;
	spin_lock(&dev->pending_lock);
	list_del_init(&k->pending);
	atomic_dec(&dev->nr_pending);
	spin_unlock(&dev->pending_lock);
	WRITE_ONCE(k->sending, false);
}

/*
 * Was @k full before the pop that is about to happen (qlock held)? Then the
 * pop may let a pending send through. The byte test is deliberately wide:
 * it does not know the size of the message that waits.
 */
bool kbus_full_before_pop(const struct kbus_ksock *k)
{
	u64 used = (u64)k->queue_count + READ_ONCE(k->out_count);

	lockdep_assert_held(&k->qlock);
	return used >= READ_ONCE(k->max_messages) ||
	       (u64)k->queued_bytes + READ_ONCE(k->dev->max_msg_size) >
	       READ_ONCE(kbus_max_queued_bytes);
}

/* After a pop without the device lock (NEXTMSG): set-aside and writers. */
void kbus_room_released(struct kbus_ksock *k, bool was_full)
{
	struct kbus_dev *dev = k->dev;

	if (READ_ONCE(k->set_aside_count)) {
		mutex_lock(&dev->lock);
		kbus_drain_set_aside(k);
		mutex_unlock(&dev->lock);
	}
	if (was_full)
		kbus_wake_writers(dev);
}

/* ------------------------------------------------------------------------
 * Queue room (spec 5.5, 14.2)
 */

static bool kbus_queue_full_raw(const struct kbus_ksock *k, bool is_reply,
				u32 size)
{
	u64 used = (u64)READ_ONCE(k->queue_count) + k->out_count;

	lockdep_assert_held(&k->dev->lock);
	/* A Reply or answer may use one of the slots reserved for it */
	if (is_reply && used)
		used--;
	if (used >= k->max_messages)
		return true;
	return (u64)READ_ONCE(k->queued_bytes) + size >
	       READ_ONCE(kbus_max_queued_bytes);
}

/*
 * Has @k no room for a message of @size bytes? Its set-aside entries go
 * first (they are its queue's logical tail): while any remain, it is full
 * for everything but a Reply.
 */
static bool kbus_queue_full(struct kbus_ksock *k, bool is_reply, u32 size)
{
	if (k->set_aside_count) {
		kbus_drain_set_aside(k);
		if (k->set_aside_count && !is_reply)
			return true;
	}
	return kbus_queue_full_raw(k, is_reply, size);
}

/* SEND's ENOLCK test: has the sender room for the answer it will await? */
bool kbus_sender_full(struct kbus_ksock *k)
{
	return kbus_queue_full(k, false, 0);
}

/* ------------------------------------------------------------------------
 * Request id tables
 */

static struct kbus_req *kbus_req_find(struct rhltable *table,
				      struct kbus_ksock *k,
				      const struct kbus_msg_id *id,
				      u32 requester)
{
	struct kbus_req *r, *first = NULL, *found = NULL;
	struct rhlist_head *list, *pos;
	struct kbus_req_key key;

	memset(&key, 0, sizeof(key));
	key.ksock = k;
	key.id = *id;
	rcu_read_lock();
	list = rhltable_lookup(table, &key, kbus_req_params);
	rhl_for_each_entry_rcu(r, pos, list, node) {
		if (!first)
			first = r;
		if (requester && r->requester == requester) {
			found = r;
			break;
		}
	}
	rcu_read_unlock();
	return found ?: first;
}

static int kbus_req_insert(struct rhltable *table, struct kbus_req *r,
			   struct kbus_ksock *k, const struct kbus_msg_id *id)
{
	memset(&r->key, 0, sizeof(r->key));
	r->key.ksock = k;
	r->key.id = *id;
	return rhltable_insert(table, &r->node, kbus_req_params);
}

/* Unlink @r and free it after a grace period (lookups run under RCU). */
static void kbus_req_remove(struct rhltable *table, struct kbus_req *r)
{
	rhltable_remove(table, &r->node, kbus_req_params);
	list_del(&r->link);
	kfree_rcu(r, rcu);
}

/*
 * Reservations are in the device's table, keyed by sender and id. (A
 * per-sender xarray indexed by serial number cost a radix-tree node
 * allocation and an RCU free per level for every Request, since a serial
 * is a large, always new index: Request->Reply ran 9% faster without it.)
 */
static struct kbus_req *kbus_outstanding_find(struct kbus_ksock *k,
					      const struct kbus_msg_id *id)
{
	lockdep_assert_held(&k->dev->lock);
	if (!k->out_count)
		return NULL;
	return kbus_req_find(&k->dev->outstanding, k, id, 0);
}

/* The table capacity /proc shows (spec 8.2); nothing is allocated by it. */
static void kbus_out_size_grow(struct kbus_ksock *k)
{
	if (k->out_count < k->out_size)
		return;
	if (k->out_size < KBUS_INIT_OUTSTANDING_SIZE)
		k->out_size = max(2 * k->out_size, 1U);
	else
		k->out_size += k->out_size / 8;
}

/* Record the reservation of sender @k for Request @id; @r preallocated. */
static int kbus_outstanding_add(struct kbus_ksock *k, struct kbus_req *r,
				const struct kbus_msg_id *id)
{
	int err;

	lockdep_assert_held(&k->dev->lock);
	err = kbus_req_insert(&k->dev->outstanding, r, k, id);
	if (err)
		return err;
	list_add(&r->link, &k->outstanding);
	kbus_out_size_grow(k);
	k->out_count++;
	k->out_max = max(k->out_max, k->out_count);
	return 0;
}

/* Unlink and free reservation @r of @k. */
static void kbus_outstanding_free(struct kbus_ksock *k, struct kbus_req *r)
{
	lockdep_assert_held(&k->dev->lock);
	kbus_req_remove(&k->dev->outstanding, r);
}

/* Release reservation @r of @k; wakes senders that may now get through. */
static void kbus_outstanding_release(struct kbus_ksock *k, struct kbus_req *r)
{
	struct kbus_dev *dev = k->dev;

	lockdep_assert_held(&dev->lock);
	kbus_outstanding_free(k, r);
	k->out_count--;
	kbus_wake_writers(dev);
}

static void kbus_outstanding_remove(struct kbus_ksock *k,
				    const struct kbus_msg_id *id)
{
	struct kbus_req *r = kbus_outstanding_find(k, id);

	if (r)
		kbus_outstanding_release(k, r);
}

static void kbus_outstanding_clear(struct kbus_ksock *k)
{
	struct kbus_req *r, *tmp;

	lockdep_assert_held(&k->dev->lock);
	list_for_each_entry_safe(r, tmp, &k->outstanding, link)
		kbus_outstanding_free(k, r);
	k->out_count = 0;
	k->out_size = 0;
}

/*
 * NEXTMSG popped Request @msg with WANT_YOU_TO_REPLY: note that @k owes an
 * answer. Called with k->lock and k->qlock held (the insert does not sleep),
 * before the pop, so a failure leaves the message queued.
 */
int kbus_unreplied_add(struct kbus_ksock *k, struct kbus_req *ur,
		       const struct kbus_msg *msg)
{
	int err;

	lockdep_assert_held(&k->lock);
	err = kbus_req_insert(&k->dev->unreplied, ur, k, &msg->id);
	if (err)
		return -ENOMEM;
	ur->requester = msg->from;
	list_add(&ur->link, &k->unreplied);
	k->unreplied_count++;
	k->unreplied_max = max(k->unreplied_max, k->unreplied_count);
	return 0;
}

/* @k sent a Reply to @id for @requester: it no longer owes an answer. */
static void kbus_unreplied_remove(struct kbus_ksock *k,
				  const struct kbus_msg_id *id, u32 requester)
{
	struct kbus_req *ur;

	lockdep_assert_held(&k->lock);
	ur = kbus_req_find(&k->dev->unreplied, k, id, requester);
	if (!ur)
		return;
	kbus_req_remove(&k->dev->unreplied, ur);
	k->unreplied_count--;
}

/* ------------------------------------------------------------------------
 * Queueing
 */

/*
 * Wake-up coalescing
 * ------------------
 * A Listener that keeps up with its sender sleeps in poll() after each
 * message, and each wake-up preempts the sender on its CPU (the scheduler
 * favours a task that slept): a fan-out to N Listeners costs N sleeps, N
 * wake-ups and about 2N context switches per message. So, as a network
 * card coalesces its interrupts, the wake-ups of a *streaming* sender are
 * held back and given together: its Listeners then find several messages
 * per wake-up and the sender runs on meanwhile.
 *
 * A fan-out SEND (see below) streams when its Ksock's previous fan-out
 * SEND was less than KBUS_STREAM_GAP_NS (or the window, if longer) ago and
 * the Ksock has not called NEXTMSG or poll since: a Requester waiting for
 * its Reply, or any sender that waits for something, never streams. Only
 * fan-out SENDs read the clock; no other SEND pays for coalescing. The gap is not the
 * window itself: a sender whose every message wakes and parks its
 * Listeners is slowed far below its own pace, its SENDs spaced by those
 * context switches, and it must be seen to stream for that to stop.
 *
 * Only a message with KBUS_COALESCE_MIN_COPIES or more copies for Ksocks
 * other than the sender is held. What coalescing saves is the sender being
 * preempted by each of several freshly woken readers; a single reader of
 * a stream (typically on another CPU) would only sit idle until the
 * timer, and the sender's own copy wakes nobody else. (Measured: a sender
 * with one Listener process ran 0.79 times as fast with its wake-ups
 * held.)
 *
 * The first message of a burst wakes at once. Within a burst a reader is
 * woken at most kbus_wake_coalesce_us after the first wake-up held, or as
 * soon as KBUS_COALESCE_MAX_QUEUED messages wait in its queue (as a
 * network card's rx-usecs and rx-frames: on a fast machine the count ends
 * the wait long before the time does). When a streaming SEND finds a
 * queue full (EAGAIN), everything held is woken at once, because the
 * sender now waits for those readers. Only the wake-up waits: the message
 * is queued, and NEXTMSG and poll see it, at once.
 */

static enum hrtimer_restart kbus_wake_timer_fn(struct hrtimer *timer)
{
	kbus_wake_now(container_of(timer, struct kbus_dev, wake_timer));
	return HRTIMER_NORESTART;
}

void kbus_wake_init(struct kbus_dev *dev)
{
	spin_lock_init(&dev->wake_lock);
	INIT_LIST_HEAD(&dev->wake_later);
	kbus_hrtimer_setup(&dev->wake_timer, kbus_wake_timer_fn);
}

/* The device goes (unload): no Ksock is open, so nothing is held. */
void kbus_wake_exit(struct kbus_dev *dev)
{
	hrtimer_cancel(&dev->wake_timer);
	WARN_ON(!list_empty(&dev->wake_later));
}

/*
 * SEND is about to push @k's fan-out: how long its wake-ups may be held
 * (0: wake at once). k->lock held.
 */
u64 kbus_send_coalesce_ns(struct kbus_ksock *k)
{
	u64 window = (u64)READ_ONCE(kbus_wake_coalesce_us) * NSEC_PER_USEC;
	u64 now, last = k->last_send_ns;

	lockdep_assert_held(&k->lock);
	k->last_send_ns = 0;
	/* Waited since its last fan-out SEND: no stream, no clock read */
	if (!window || READ_ONCE(k->received)) {
		WRITE_ONCE(k->received, false);
		return 0;
	}
	/*
	 * Not ktime_get_ns(): that reads the clocksource, which can be a slow
	 * device (HPET). Drift between CPUs only blurs the stream test; a
	 * clock that went back reads as a long gap (no stream).
	 */
	now = local_clock();
	k->last_send_ns = now;
	if (!last)
		return 0;	/* the first fan-out SEND after a wait */
	return now - last < max_t(u64, window, KBUS_STREAM_GAP_NS) ? window : 0;
}

/* Wake every Ksock whose wake-up is held. Any context. */
void kbus_wake_now(struct kbus_dev *dev)
{
	struct kbus_ksock *k, *tmp;
	unsigned long flags;

	spin_lock_irqsave(&dev->wake_lock, flags);
	list_for_each_entry_safe(k, tmp, &dev->wake_later, wake_later) {
		list_del_init(&k->wake_later);
		wake_up_interruptible_poll(&k->wait, EPOLLIN | EPOLLRDNORM);
	}
	spin_unlock_irqrestore(&dev->wake_lock, flags);
}

/*
 * @k is closing and can no longer be queued to: make sure the timer no
 * longer sees it. Its sleepers (there are none left) need no wake-up.
 */
void kbus_wake_forget(struct kbus_ksock *k)
{
	unsigned long flags;

	spin_lock_irqsave(&k->dev->wake_lock, flags);
	list_del_init(&k->wake_later);
	spin_unlock_irqrestore(&k->dev->wake_lock, flags);
}

/* Hold @k's wake-up; the timer gives it at most dev->coalesce_ns later. */
static void kbus_wake_later(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;
	unsigned long flags;

	lockdep_assert_held(&dev->lock);
	spin_lock_irqsave(&dev->wake_lock, flags);
	if (list_empty(&k->wake_later))
		list_add_tail(&k->wake_later, &dev->wake_later);
	/* A queued timer is not pushed back: the first held wake-up rules */
	if (!hrtimer_is_queued(&dev->wake_timer))
		hrtimer_start(&dev->wake_timer, ns_to_ktime(dev->coalesce_ns),
			      HRTIMER_MODE_REL);
	spin_unlock_irqrestore(&dev->wake_lock, flags);
}

static void kbus_wake_reader(struct kbus_ksock *k)
{
	lockdep_assert_held(&k->dev->lock);
	/* wq_has_sleeper() pairs with the barrier in kbus_poll() */
	if (!wq_has_sleeper(&k->wait))
		return;
	if (k->dev->coalesce_ns &&
	    READ_ONCE(k->queue_count) < KBUS_COALESCE_MAX_QUEUED)
		kbus_wake_later(k);
	else
		wake_up_interruptible_poll(&k->wait, EPOLLIN | EPOLLRDNORM);
}

/* Put @item (msg, flags, binding filled in) on @k's queue. */
static void kbus_enqueue(struct kbus_ksock *k, struct kbus_qitem *item,
			 enum kbus_why why)
{
	struct kbus_msg *msg = item->msg;

	lockdep_assert_held(&k->dev->lock);
	if (k->only_once && why == KBUS_FOR_LISTENER &&
	    kbus_id_eq(&msg->id, &k->last_pushed)) {
		kbus_qitem_free(item);
		return;
	}
	spin_lock(&k->qlock);
	if (msg->flags & KBUS_BIT_URGENT)
		list_add(&item->list, &k->queue);
	else
		list_add_tail(&item->list, &k->queue);
	WRITE_ONCE(k->queue_count, k->queue_count + 1);
	WRITE_ONCE(k->queued_bytes, k->queued_bytes + msg->size);
	spin_unlock(&k->qlock);
	k->last_pushed = msg->id;
	if (why == KBUS_FOR_SENDER && !kbus_id_is_zero(&msg->in_reply_to))
		kbus_outstanding_remove(k, &msg->in_reply_to);
	kbus_wake_reader(k);
}

static void kbus_set_aside_unlink(struct kbus_ksock *k,
				  struct kbus_qitem *item)
{
	struct kbus_dev *dev = k->dev;

	lockdep_assert_held(&dev->lock);
	list_del_init(&item->list);
	dev->set_aside_count--;
	WRITE_ONCE(k->set_aside_count, k->set_aside_count - 1);
	if (!dev->set_aside_count)
		dev->tragic = false;
}

/* Move @k's set-aside entries to its queue: all, or while it has room. */
static void kbus_move_set_aside(struct kbus_ksock *k, bool all)
{
	struct kbus_qitem *item, *tmp;

	list_for_each_entry_safe(item, tmp, &k->set_aside, list) {
		if (!all && kbus_queue_full_raw(k, false, item->msg->size))
			break;
		kbus_set_aside_unlink(k, item);
		kbus_enqueue(k, item, KBUS_FOR_LISTENER);
	}
}

void kbus_drain_set_aside(struct kbus_ksock *k)
{
	lockdep_assert_held(&k->dev->lock);
	if (k->set_aside_count)
		kbus_move_set_aside(k, false);
}

/* Queue one copy of @msg to @k, using the preallocated @item. */
static void kbus_push(struct kbus_ksock *k, struct kbus_qitem *item,
		      struct kbus_msg *msg, enum kbus_why why,
		      struct kbus_binding *b)
{
	item->msg = kbus_msg_get(msg);
	item->binding = b;
	item->flags = msg->flags & ~KBUS_BIT_WANT_YOU_TO_REPLY;
	if (why == KBUS_FOR_REPLIER && (msg->flags & KBUS_BIT_WANT_A_REPLY))
		item->flags |= KBUS_BIT_WANT_YOU_TO_REPLY;
	if (k->set_aside_count)
		kbus_move_set_aside(k, true);
	kbus_enqueue(k, item, why);
}

/* Free the unused @items allocated for @msg. */
static void kbus_items_free(struct list_head *items, struct kbus_msg *msg)
{
	struct kbus_qitem *item, *tmp;

	list_for_each_entry_safe(item, tmp, items, list) {
		list_del_init(&item->list);
		if (item->embedded)
			kbus_msg_return_item(msg, item);
		else
			kbus_qitem_free(item);
	}
}

/* @n queue items for copies of @msg: its own one first, if still free. */
static int kbus_items_alloc(struct list_head *items, struct kbus_msg *msg,
			    u32 n)
{
	struct kbus_qitem *item;

	item = n ? kbus_msg_take_item(msg) : NULL;
	if (item) {
		list_add(&item->list, items);
		n--;
	}
	while (n--) {
		item = kbus_qitem_alloc(KBUS_GFP);
		if (!item) {
			kbus_items_free(items, msg);
			return -ENOMEM;
		}
		list_add(&item->list, items);
	}
	return 0;
}

static struct kbus_qitem *kbus_items_take(struct list_head *items)
{
	struct kbus_qitem *item;

	item = list_first_entry(items, struct kbus_qitem, list);
	list_del_init(&item->list);
	return item;
}

/* ------------------------------------------------------------------------
 * Synthetic answers (spec 7.5)
 */

/*
 * Queue a Reply-like status message to @requester (if it is still open),
 * at the back of its queue, without a full check: its reservation for
 * @req_id guarantees room, and queueing releases that reservation.
 *
 * With @if_waiting (GoneAway, Ignored, Unbound) nothing is sent unless the
 * requester is still waiting for an answer to @req_id: a Request may have
 * been answered already by a Reply from another Ksock (spec 6.6), and
 * every Request gets exactly one answer.
 */
static void kbus_answer(struct kbus_dev *dev, const char *name, u32 from,
			u32 requester, const struct kbus_msg_id *req_id,
			bool if_waiting)
{
	struct kbus_ksock *k = kbus_find_ksock(dev, requester);
	struct kbus_qitem *item;
	struct kbus_msg *msg;
	struct kbus_req *r;

	if (!k)
		return;
	/* One lookup: the reservation found here is the one released */
	r = kbus_outstanding_find(k, req_id);
	if (if_waiting && !r)
		return;
	item = kbus_answer_alloc(dev, name, KBUS_GFP_OWED);
	if (!item) {
		pr_warn_ratelimited("kbus: out of memory, %s to %u lost\n",
				    name, requester);
	} else {
		msg = item->msg;
		msg->from = from;
		msg->to = requester;
		msg->in_reply_to = *req_id;
		kbus_dbg(dev, "%s [0:%u] to %u for [%u:%u]\n", name,
			 msg->id.serial_num, requester, req_id->network_id,
			 req_id->serial_num);
		kbus_push(k, item, msg, KBUS_FOR_ANSWER, NULL);
		kbus_msg_put(msg);
	}
	if (r)
		kbus_outstanding_release(k, r);
}

/* ------------------------------------------------------------------------
 * Delivery (spec 5.5)
 */

static int kbus_name_rank(const struct kbus_name *n)
{
	switch (n->str[n->len - 1]) {
	case '*':
		return 1;
	case '%':
		return 2;
	default:
		return 3;
	}
}

/*
 * The Replier binding for @msg's name (spec 7.2): specific over '%' over
 * '*', and among '*' bindings the most recently bound (spec 12.11).
 */
static struct kbus_binding *kbus_choose_replier(struct kbus_dev *dev,
						struct kbus_match *m)
{
	struct kbus_binding *b, *best = NULL;
	int rank, best_rank = 0;
	struct kbus_name *n;

	kbus_match_rewind(m);
	while ((n = kbus_match_next(dev, m))) {
		b = n->replier;
		if (!b)
			continue;
		rank = kbus_name_rank(n);
		if (rank > best_rank || (rank == best_rank && b->seq > best->seq)) {
			best = b;
			best_rank = rank;
		}
	}
	return best;
}

static int kbus_full_error(struct kbus_ksock *k, bool is_reply,
			   const struct kbus_msg *msg)
{
	if (!kbus_queue_full(k, is_reply, msg->size))
		return 0;
	return (msg->flags & KBUS_BIT_ALL_OR_WAIT) ? -EAGAIN : -EBUSY;
}

/* Reply checks: find the requester the Reply goes to. */
static int kbus_check_target(struct kbus_dev *dev, const struct kbus_msg *msg,
			     struct kbus_ksock **target)
{
	struct kbus_ksock *t;

	*target = NULL;
	if (kbus_id_is_zero(&msg->in_reply_to))
		return 0;
	t = kbus_find_ksock(dev, msg->to);
	if (!t)
		return -EADDRNOTAVAIL;
	if (!kbus_outstanding_find(t, &msg->in_reply_to))
		return -ECONNREFUSED;
	*target = t;
	return kbus_full_error(t, true, msg);
}

static int kbus_check_replier(const struct kbus_binding *replier,
			      const struct kbus_msg *msg)
{
	if (msg->to && replier->ksock->id != msg->to)
		return -EPIPE;
	return kbus_full_error(replier->ksock, false, msg);
}

/*
 * Mark each matching Listener binding as chosen or skipped (full) and count
 * the chosen ones (*count), and those of Ksocks other than @sender
 * (*others). A full Listener fails the send with ALL_OR_WAIT/FAIL.
 */
static int kbus_choose_listeners(struct kbus_dev *dev, struct kbus_match *m,
				 const struct kbus_msg *msg,
				 const struct kbus_ksock *sender,
				 u32 *count, u32 *others)
{
	struct kbus_binding *b;
	struct kbus_name *n;

	*count = 0;
	*others = 0;
	kbus_match_rewind(m);
	while ((n = kbus_match_next(dev, m))) {
		list_for_each_entry(b, &n->listeners, name_list) {
			b->chosen = !kbus_queue_full(b->ksock, false,
						     msg->size);
			if (b->chosen) {
				(*count)++;
				*others += b->ksock != sender;
				continue;
			}
			if (msg->flags & KBUS_BIT_ALL_OR_WAIT)
				return -EAGAIN;
			if (msg->flags & KBUS_BIT_ALL_OR_FAIL)
				return -EBUSY;
		}
	}
	return 0;
}

static void kbus_push_listeners(struct kbus_dev *dev, struct kbus_match *m,
				struct kbus_msg *msg, struct list_head *items)
{
	struct kbus_binding *b;
	struct kbus_name *n;

	kbus_match_rewind(m);
	while ((n = kbus_match_next(dev, m)))
		list_for_each_entry(b, &n->listeners, name_list)
			if (b->chosen)
				kbus_push(b->ksock, kbus_items_take(items), msg,
					  KBUS_FOR_LISTENER, b);
}

/*
 * Deliver @msg from @sender (NULL for KBUS itself; else its k->lock is
 * held). Every check, and every allocation, happens before anything is
 * queued: a failure queues nothing. SEND passes @from_send: if the message
 * fans out, its wake-ups may be held (kbus_send_coalesce_ns()).
 */
int kbus_deliver(struct kbus_dev *dev, struct kbus_ksock *sender,
		 struct kbus_msg *msg, bool from_send)
{
	bool request = msg->flags & KBUS_BIT_WANT_A_REPLY;
	struct kbus_binding *replier = NULL;
	struct kbus_req *reservation = NULL;
	struct kbus_ksock *target;
	struct kbus_match m;
	LIST_HEAD(items);
	u32 n, others;
	int err;

	lockdep_assert_held(&dev->lock);
	if (sender)
		lockdep_assert_held(&sender->lock);
	kbus_match_init(dev, &m, msg);
	if (request) {
		replier = kbus_choose_replier(dev, &m);
		if (!replier)
			return -EADDRNOTAVAIL;
	}
	err = kbus_check_target(dev, msg, &target);
	if (err)
		return err;
	if (replier) {
		err = kbus_check_replier(replier, msg);
		if (err)
			return err;
	}
	err = kbus_choose_listeners(dev, &m, msg, sender, &n, &others);
	if (err)
		return err;
	err = kbus_items_alloc(&items, msg, n + !!target + !!replier);
	if (err)
		return err;
	others += (target && target != sender) +
		  (replier && replier->ksock != sender);
	if (replier && sender) {
		reservation = kmalloc(sizeof(*reservation), KBUS_GFP);
		err = reservation ? kbus_outstanding_add(sender, reservation,
							 &msg->id) : -ENOMEM;
		if (err) {
			kfree(reservation);
			kbus_items_free(&items, msg);
			return -ENOMEM;
		}
	}

	/* A stream's wake-ups are coalesced only where it fans out */
	if (from_send && others >= KBUS_COALESCE_MIN_COPIES)
		dev->coalesce_ns = kbus_send_coalesce_ns(sender);
	if (target) {
		kbus_push(target, kbus_items_take(&items), msg,
			  KBUS_FOR_SENDER, NULL);
		if (sender)
			kbus_unreplied_remove(sender, &msg->in_reply_to,
					      msg->to);
	}
	if (replier)
		kbus_push(replier->ksock, kbus_items_take(&items), msg,
			  KBUS_FOR_REPLIER, replier);
	kbus_push_listeners(dev, &m, msg, &items);
	dev->coalesce_ns = 0;
	WARN_ON_ONCE(!list_empty(&items));
	return 0;
}

/*
 * poll() retry of a pending (ALL_OR_WAIT) send (spec 5.9), k->lock held.
 * Leaves the sending state unless the retry says EAGAIN again.
 */
void kbus_retry_pending(struct kbus_ksock *k)
{
	struct kbus_msg *msg = k->wr.msg;
	struct kbus_dev *dev = k->dev;
	int err;

	lockdep_assert_held(&k->lock);
	if (!msg) {
		kbus_pending_leave(k);
		return;
	}
	mutex_lock(&dev->lock);
	err = kbus_deliver(dev, k, msg, false);
	if (err == -EAGAIN) {
		mutex_unlock(&dev->lock);
		return;
	}
	if (err == -EADDRNOTAVAIL)
		kbus_answer(dev, KBUS_NAME_DISAPPEARED, 0, k->id, &msg->id,
			    false);
	else if (err && (msg->flags & KBUS_BIT_WANT_A_REPLY))
		kbus_answer(dev, KBUS_NAME_ERRORSENDING, 0, k->id, &msg->id,
			    false);
	mutex_unlock(&dev->lock);
	kbus_write_discard(k);
}

/* ------------------------------------------------------------------------
 * Replier Bind Events and the set-aside lists (spec 7.6, 14.4)
 */

static u32 kbus_bind_event_size(u32 name_len)
{
	return kbus_entire_len(sizeof(KBUS_NAME_BIND_EVENT) - 1,
			       sizeof(struct kbus_replier_bind_event_data) +
			       kbus_padded_name_len(name_len));
}

static struct kbus_msg *kbus_bind_event(struct kbus_dev *dev, u32 is_bind,
					u32 binder, const char *name, u32 len,
					gfp_t gfp)
{
	struct kbus_replier_bind_event_data *ev;
	u32 data_len = sizeof(*ev) + kbus_padded_name_len(len);
	struct kbus_msg *msg;

	msg = kbus_msg_synthetic(dev, KBUS_NAME_BIND_EVENT, data_len, gfp);
	if (!msg)
		return NULL;
	memset(msg->data, 0, data_len);
	ev = msg->data;
	ev->is_bind = is_bind;
	ev->binder = binder;
	ev->name_len = len;
	memcpy(ev + 1, name, len);
	msg->flags = KBUS_BIT_SYNTHETIC | KBUS_BIT_ALL_OR_FAIL;
	return msg;
}

static void kbus_set_aside_add(struct kbus_dev *dev, struct kbus_binding *b,
			       struct kbus_msg *msg)
{
	struct kbus_qitem *item = kbus_qitem_alloc(KBUS_GFP_OWED);
	struct kbus_ksock *k = b->ksock;

	if (!item) {
		pr_warn_ratelimited("kbus: out of memory, bind event lost\n");
		return;
	}
	item->msg = kbus_msg_get(msg);
	item->binding = b;
	item->flags = msg->flags;
	item->gen = dev->event_gen;
	list_add_tail(&item->list, &k->set_aside);
	dev->set_aside_count++;
	WRITE_ONCE(k->set_aside_count, k->set_aside_count + 1);
}

static bool kbus_msg_is_events_lost(const struct kbus_msg *msg)
{
	return !strcmp(msg->name, KBUS_NAME_EVENTS_LOST);
}

/* Has @k an UnbindEventsLost entry after the last real set-aside event? */
static bool kbus_has_tail_lost(struct kbus_dev *dev, struct kbus_ksock *k)
{
	struct kbus_qitem *last;

	if (list_empty(&k->set_aside))
		return false;
	last = list_last_entry(&k->set_aside, struct kbus_qitem, list);
	return kbus_msg_is_events_lost(last->msg) &&
	       last->gen == dev->event_gen;
}

static void kbus_set_aside_lost(struct kbus_dev *dev,
				const struct kbus_msg *event)
{
	struct kbus_binding *b;
	struct kbus_msg *lost;
	struct kbus_match m;
	struct kbus_name *n;

	dev->tragic = true;
	lost = kbus_msg_synthetic(dev, KBUS_NAME_EVENTS_LOST, 0, KBUS_GFP_OWED);
	if (!lost) {
		pr_warn_ratelimited("kbus: out of memory, %s lost\n",
				    KBUS_NAME_EVENTS_LOST);
		return;
	}
	kbus_match_init(dev, &m, event);
	while ((n = kbus_match_next(dev, &m)))
		list_for_each_entry(b, &n->listeners, name_list)
			if (!kbus_has_tail_lost(dev, b->ksock))
				kbus_set_aside_add(dev, b, lost);
	kbus_msg_put(lost);
}

/* A bind event that some Listener had no room for: set it aside. */
static void kbus_set_aside_event(struct kbus_dev *dev, struct kbus_msg *msg)
{
	struct kbus_binding *b;
	struct kbus_match m;
	struct kbus_name *n;
	u32 count = 0;

	kbus_match_init(dev, &m, msg);
	while ((n = kbus_match_next(dev, &m)))
		list_for_each_entry(b, &n->listeners, name_list)
			count++;
	if (!dev->tragic &&
	    dev->set_aside_count + count <= KBUS_MAX_UNSENT_UNBIND_MSGS) {
		dev->event_gen++;
		kbus_match_rewind(&m);
		while ((n = kbus_match_next(dev, &m)))
			list_for_each_entry(b, &n->listeners, name_list)
				kbus_set_aside_add(dev, b, msg);
	} else {
		kbus_set_aside_lost(dev, msg);
	}
	kbus_match_rewind(&m);
	while ((n = kbus_match_next(dev, &m)))
		list_for_each_entry(b, &n->listeners, name_list)
			kbus_drain_set_aside(b->ksock);
}

/*
 * May full Listener @k make the BIND or UNBIND of the current task fail
 * (spec 14.4)? Only if it was opened by the same user, or by an admin;
 * anyone else's full queue must not lock this user out.
 */
static bool kbus_may_block_binds(const struct kbus_ksock *k)
{
	return k->admin || uid_eq(k->uid, current_euid());
}

/* Does a full Listener that may block binds hear bind event @msg? */
static bool kbus_bind_event_blocked(struct kbus_dev *dev,
				    const struct kbus_msg *msg)
{
	struct kbus_binding *b;
	struct kbus_match m;
	struct kbus_name *n;

	kbus_match_init(dev, &m, msg);
	while ((n = kbus_match_next(dev, &m)))
		list_for_each_entry(b, &n->listeners, name_list)
			if (kbus_may_block_binds(b->ksock) &&
			    kbus_queue_full(b->ksock, false, msg->size))
				return true;
	return false;
}

/*
 * BIND/UNBIND as Replier with reporting on: every Listener gets the event,
 * or the operation fails with EAGAIN (spec 7.6) if a Listener that may
 * block it is full; other full Listeners get it through their set-aside
 * lists (spec 14.4).
 */
static int kbus_report_bind(struct kbus_ksock *k, u32 is_bind,
			    const char *name, u32 len)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_msg *msg;
	int err;

	if (!dev->report_binds)
		return 0;
	msg = kbus_bind_event(dev, is_bind, k->id, name, len, KBUS_GFP);
	if (!msg)
		return -ENOMEM;
	err = kbus_deliver(dev, NULL, msg, false);
	if (err == -EBUSY) {
		if (kbus_bind_event_blocked(dev, msg)) {
			err = -EAGAIN;
		} else {
			kbus_set_aside_event(dev, msg);
			err = 0;
		}
	}
	kbus_msg_put(msg);
	return err;
}

/* Unbind event for a Replier binding of a closing Ksock: cannot fail. */
static void kbus_close_bind_event(struct kbus_ksock *k, struct kbus_binding *b)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_msg *msg;
	int err;

	msg = kbus_bind_event(dev, 0, k->id, b->name->str, b->name->len,
			      KBUS_GFP_OWED);
	if (!msg) {
		pr_warn_ratelimited("kbus: out of memory, bind event lost\n");
		return;
	}
	err = kbus_deliver(dev, NULL, msg, false);
	if (err == -EBUSY)
		kbus_set_aside_event(dev, msg);
	else if (err)
		pr_warn_ratelimited("kbus: error %d, bind event lost\n", err);
	kbus_msg_put(msg);
}

static void kbus_set_aside_remove_binding(struct kbus_ksock *k,
					  const struct kbus_binding *b)
{
	struct kbus_qitem *item, *tmp;

	list_for_each_entry_safe(item, tmp, &k->set_aside, list) {
		if (item->binding != b)
			continue;
		kbus_set_aside_unlink(k, item);
		kbus_qitem_free(item);
	}
}

/* REPORTREPLIERBINDS with 1: current Replier bindings, to the caller only */
int kbus_report_current_binds(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_qitem *item;
	struct kbus_binding *b;
	struct kbus_msg *msg;

	lockdep_assert_held(&dev->lock);
	list_for_each_entry(b, &dev->bindings, dev_list) {
		if (!b->is_replier)
			continue;
		if (kbus_queue_full(k, false, kbus_bind_event_size(b->name->len)))
			return -EBUSY;
		msg = kbus_bind_event(dev, 1, b->ksock->id, b->name->str,
				      b->name->len, KBUS_GFP);
		if (!msg)
			return -ENOMEM;
		item = kbus_qitem_alloc(KBUS_GFP);
		if (!item) {
			kbus_msg_put(msg);
			return -ENOMEM;
		}
		kbus_push(k, item, msg, KBUS_FOR_LISTENER, NULL);
		kbus_msg_put(msg);
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * BIND, UNBIND, REPLIER (spec 3.11, 7.1, 7.7)
 */

u32 kbus_find_replier(struct kbus_dev *dev, const char *name, u32 len)
{
	struct kbus_name *n = kbus_name_find(dev, name, len);

	return n && n->replier ? n->replier->ksock->id : 0;
}

static bool kbus_is_bind_event_name(const char *name, u32 len)
{
	return len == sizeof(KBUS_NAME_BIND_EVENT) - 1 &&
	       !memcmp(name, KBUS_NAME_BIND_EVENT, len);
}

static void kbus_binding_link(struct kbus_ksock *k, struct kbus_binding *b,
			      struct kbus_name *n)
{
	struct kbus_dev *dev = k->dev;

	b->ksock = k;
	b->name = n;
	b->seq = ++dev->bind_seq;
	n->users++;
	if (b->is_replier)
		n->replier = b;
	else
		list_add(&b->name_list, &n->listeners);
	list_add(&b->dev_list, &dev->bindings);
	list_add(&b->ksock_list, &k->bindings);
}

static void kbus_binding_unlink(struct kbus_dev *dev, struct kbus_binding *b)
{
	struct kbus_name *n = b->name;

	if (b->is_replier)
		n->replier = NULL;
	else
		list_del(&b->name_list);
	list_del(&b->dev_list);
	list_del(&b->ksock_list);
	n->users--;
	kbus_name_put(dev, n);
	kfree(b);
}

int kbus_bind(struct kbus_ksock *k, u32 is_replier, const char *name,
	      u32 len)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_binding *b;
	struct kbus_name *n;
	int err;

	lockdep_assert_held(&dev->lock);
	if (!kbus_name_valid(name, len))
		return -EBADMSG;
	if (is_replier && kbus_is_bind_event_name(name, len))
		return -EBADMSG;
	if (is_replier && kbus_find_replier(dev, name, len))
		return -EADDRINUSE;
	b = kzalloc(sizeof(*b), KBUS_GFP);
	if (!b)
		return -ENOMEM;
	b->is_replier = is_replier;
	n = kbus_name_get(dev, name, len);
	if (IS_ERR(n)) {
		kfree(b);
		return PTR_ERR(n);
	}
	if (is_replier) {
		err = kbus_report_bind(k, 1, name, len);
		if (err) {
			kbus_name_put(dev, n);
			kfree(b);
			return err;
		}
	}
	kbus_binding_link(k, b, n);
	kbus_dbg(dev, "ksock %u bound %s '%s'\n", k->id,
		 is_replier ? "replier" : "listener", n->str);
	/* The chosen Replier may have changed: a pending send may get through */
	if (is_replier)
		kbus_wake_writers(dev);
	return 0;
}

/* Take @k's queued items that came through @b off its queue. */
static void kbus_queue_take_binding(struct kbus_ksock *k,
				    const struct kbus_binding *b,
				    struct list_head *removed)
{
	struct kbus_qitem *item, *tmp;

	spin_lock(&k->qlock);
	list_for_each_entry_safe(item, tmp, &k->queue, list) {
		if (item->binding != b)
			continue;
		list_move_tail(&item->list, removed);
		WRITE_ONCE(k->queue_count, k->queue_count - 1);
		WRITE_ONCE(k->queued_bytes, k->queued_bytes - item->msg->size);
	}
	spin_unlock(&k->qlock);
}

/* Remove binding @b of @k and everything that came through it. */
static void kbus_binding_remove(struct kbus_ksock *k, struct kbus_binding *b)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_qitem *item, *tmp;
	LIST_HEAD(removed);

	lockdep_assert_held(&dev->lock);
	kbus_queue_take_binding(k, b, &removed);
	kbus_set_aside_remove_binding(k, b);
	kbus_binding_unlink(dev, b);

	list_for_each_entry_safe(item, tmp, &removed, list) {
		if (item->flags & KBUS_BIT_WANT_YOU_TO_REPLY)
			kbus_answer(dev, KBUS_NAME_UNBOUND, k->id,
				    item->msg->from, &item->msg->id, true);
		list_del(&item->list);
		kbus_qitem_free(item);
	}
	kbus_drain_set_aside(k);
	kbus_wake_writers(dev);
}

int kbus_unbind(struct kbus_ksock *k, u32 is_replier, const char *name,
		u32 len)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_binding *b, *found = NULL;
	int err;

	lockdep_assert_held(&dev->lock);
	if (!kbus_name_valid(name, len))
		return -EBADMSG;
	/* Newest first: of several identical bindings, the newest goes */
	list_for_each_entry(b, &k->bindings, ksock_list) {
		if (b->is_replier == is_replier && b->name->len == len &&
		    !memcmp(b->name->str, name, len)) {
			found = b;
			break;
		}
	}
	if (!found)
		return -EINVAL;
	if (is_replier) {
		err = kbus_report_bind(k, 0, name, len);
		if (err)
			return err;
	}
	kbus_dbg(dev, "ksock %u unbound '%s'\n", k->id, found->name->str);
	kbus_binding_remove(k, found);
	return 0;
}

/* ------------------------------------------------------------------------
 * Close (spec 7.7): everything here costs O(the Ksock's own state)
 */

/* Empty the queue, answering unread Requests with GoneAway. */
static void kbus_close_queue(struct kbus_ksock *k)
{
	struct kbus_qitem *item, *tmp;
	LIST_HEAD(queue);

	spin_lock(&k->qlock);
	list_splice_init(&k->queue, &queue);
	WRITE_ONCE(k->queue_count, 0);
	WRITE_ONCE(k->queued_bytes, 0);
	spin_unlock(&k->qlock);
	list_for_each_entry_safe(item, tmp, &queue, list) {
		list_del(&item->list);
		if (item->flags & KBUS_BIT_WANT_YOU_TO_REPLY)
			kbus_answer(k->dev, KBUS_NAME_GONEAWAY, k->id,
				    item->msg->from, &item->msg->id, true);
		kbus_qitem_free(item);
	}
}

static void kbus_close_bindings(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_binding *b, *tmp;

	/*
	 * Unlink every binding before any event goes out, so that events
	 * (and their set-aside entries) never reach this Ksock.
	 */
	list_for_each_entry_safe(b, tmp, &k->bindings, ksock_list) {
		if (b->is_replier)
			b->name->replier = NULL;
		else
			list_del_init(&b->name_list);
	}
	list_for_each_entry_safe(b, tmp, &k->bindings, ksock_list) {
		if (b->is_replier && dev->report_binds)
			kbus_close_bind_event(k, b);
		list_del(&b->dev_list);
		list_del(&b->ksock_list);
		b->name->users--;
		kbus_name_put(dev, b->name);
		kfree(b);
	}
}

static void kbus_close_set_aside(struct kbus_ksock *k)
{
	struct kbus_qitem *item, *tmp;

	list_for_each_entry_safe(item, tmp, &k->set_aside, list) {
		kbus_set_aside_unlink(k, item);
		kbus_qitem_free(item);
	}
}

/* Answer every popped but unanswered Request with Ignored. */
static void kbus_close_unreplied(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_req *ur, *tmp;

	list_for_each_entry_safe(ur, tmp, &k->unreplied, link) {
		kbus_answer(dev, KBUS_NAME_IGNORED, k->id, ur->requester,
			    &ur->key.id, true);
		kbus_req_remove(&dev->unreplied, ur);
	}
	k->unreplied_count = 0;
}

/*
 * Everything a close does, synchronously; k->lock and dev->lock held. The
 * Ksock is taken off the device first, so nothing can be addressed to it
 * any more: answers it would address to itself are dropped, and answers to
 * its own outstanding Requests will not be delivered.
 */
void kbus_ksock_teardown(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;

	lockdep_assert_held(&k->lock);
	lockdep_assert_held(&dev->lock);
	xa_erase(&dev->ksocks, k->id);
	list_del_init(&k->list);
	kbus_read_drop(k);
	kbus_write_discard(k);
	kbus_outstanding_clear(k);
	kbus_close_set_aside(k);
	kbus_close_queue(k);
	kbus_close_bindings(k);
	kbus_close_unreplied(k);
	kbus_wake_writers(dev);
}
