// SPDX-License-Identifier: GPL-2.0
/*
 * KBUS: names, bindings, delivery, synthetic messages, Replier Bind Events
 * and the set-aside list (spec sections 4, 5.5, 5.9, 5.10, 7).
 *
 * Every function here is called with the device mutex held.
 *
 * Set-aside list (spec 7.6 with decision 13 of section 13):
 *
 * An unbind event that cannot be delivered to every Listener during a close
 * is put on the device's set-aside list, one entry per Listener binding,
 * each entry remembering its Ksock and the binding it came through. Such
 * entries are logically the tail of that Ksock's queue:
 *
 *  - "Drain": whenever a Ksock may have gained room (immediately after the
 *    entries are set aside, after NEXTMSG pops, after UNBIND removed queued
 *    messages, after MAXMSGS), its entries move, oldest first, to the back
 *    of its queue for as long as the queue is not full (reservations count,
 *    as for any delivery). So a Ksock that had room gets the event at once,
 *    and a Ksock that holds set-aside entries always has a full queue: no
 *    ordinary delivery can reach it, and no newer message can overtake.
 *  - "Flush": the only messages that can still reach a full Ksock are those
 *    queued without a full check (Replies and synthetic answers using a
 *    reserved slot, Replier copies beside Listener copies). Before any such
 *    message is queued, all of that Ksock's set-aside entries move to its
 *    queue first, so they are read before the newer message (this may take
 *    the queue over its limit, as spec 12 item 19 allows).
 *  - Removal: an entry is removed exactly when the binding it came through
 *    is removed (UNBIND of that binding, or close of its Ksock).
 *  - Moves use the Listener path, so MSGONLYONCE applies to them.
 */

#include <linux/ctype.h>
#include <linux/minmax.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "kbus_internal.h"

enum kbus_why {
	KBUS_FOR_SENDER,	/* Reply or synthetic answer to the requester */
	KBUS_FOR_REPLIER,
	KBUS_FOR_LISTENER,
};

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

static bool kbus_str_eq(const char *a, u32 alen, const char *b, u32 blen)
{
	return alen == blen && !memcmp(a, b, alen);
}

static bool kbus_binding_matches(const struct kbus_binding *b,
				 const struct kbus_msg *msg)
{
	u32 len = b->name_len, n = msg->name_len;
	char last = b->name[len - 1];

	if (last != '*' && last != '%')
		return kbus_str_eq(b->name, len, msg->name, n);
	if (n < len || memcmp(msg->name, b->name, len - 1))
		return false;
	if (last == '%')
		return !memchr(msg->name + len - 1, '.', n - len + 1);
	return true;
}

static bool kbus_is_listener_of(const struct kbus_binding *b,
				const struct kbus_msg *msg)
{
	return !b->is_replier && kbus_binding_matches(b, msg);
}

/* ------------------------------------------------------------------------
 * Ksocks, outstanding Requests, unreplied Requests
 */

struct kbus_ksock *kbus_find_ksock(struct kbus_dev *dev, u32 id)
{
	struct kbus_ksock *k;

	list_for_each_entry(k, &dev->ksocks, list)
		if (k->id == id)
			return k;
	return NULL;
}

void kbus_wake_writers(struct kbus_dev *dev)
{
	wake_up_interruptible_poll(&dev->write_wait, EPOLLOUT | EPOLLWRNORM);
}

bool kbus_queue_full(const struct kbus_ksock *k, bool is_reply)
{
	u64 used = (u64)k->queue_count + k->out_count;

	if (is_reply && used)
		used--;
	return used >= k->max_messages;
}

/* Make sure the outstanding table has room for one more entry. */
int kbus_outstanding_reserve(struct kbus_ksock *k)
{
	struct kbus_msg_id *table;
	u32 size;

	if (k->out_count < k->out_size)
		return 0;
	if (k->out_size < KBUS_INIT_OUTSTANDING_SIZE)
		size = max(2 * k->out_size, 1U);
	else
		size = k->out_size + k->out_size / 8;
	table = krealloc_array(k->outstanding, size, sizeof(*table),
			       GFP_KERNEL);
	if (!table)
		return -ENOMEM;
	k->outstanding = table;
	k->out_size = size;
	return 0;
}

static void kbus_outstanding_add(struct kbus_ksock *k,
				 const struct kbus_msg_id *id)
{
	k->outstanding[k->out_count++] = *id;
	k->out_max = max(k->out_max, k->out_count);
}

static int kbus_outstanding_find(const struct kbus_ksock *k,
				 const struct kbus_msg_id *id)
{
	u32 i;

	for (i = 0; i < k->out_count; i++)
		if (kbus_id_eq(&k->outstanding[i], id))
			return i;
	return -1;
}

/* Release a reservation; wakes senders that may now get through. */
static void kbus_outstanding_remove(struct kbus_ksock *k,
				    const struct kbus_msg_id *id)
{
	int i = kbus_outstanding_find(k, id);

	if (i < 0)
		return;
	k->outstanding[i] = k->outstanding[--k->out_count];
	kbus_wake_writers(k->dev);
}

static void kbus_unreplied_remove(struct kbus_ksock *k,
				  const struct kbus_msg_id *id)
{
	struct kbus_unreplied *ur;

	list_for_each_entry(ur, &k->unreplied, list) {
		if (kbus_id_eq(&ur->id, id)) {
			list_del(&ur->list);
			kfree(ur);
			k->unreplied_count--;
			return;
		}
	}
}

/* ------------------------------------------------------------------------
 * Queueing
 */

/* Put @item (msg, flags, binding filled in) on @k's queue. */
static void kbus_enqueue(struct kbus_ksock *k, struct kbus_qitem *item,
			 enum kbus_why why)
{
	struct kbus_msg *msg = item->msg;

	if (k->only_once && why == KBUS_FOR_LISTENER &&
	    kbus_id_eq(&msg->id, &k->last_pushed)) {
		kbus_qitem_free(item);
		return;
	}
	item->ksock = NULL;
	if (msg->flags & KBUS_BIT_URGENT)
		list_add(&item->list, &k->queue);
	else
		list_add_tail(&item->list, &k->queue);
	k->queue_count++;
	k->last_pushed = msg->id;
	if (why == KBUS_FOR_SENDER && !kbus_id_is_zero(&msg->in_reply_to))
		kbus_outstanding_remove(k, &msg->in_reply_to);
	wake_up_interruptible_poll(&k->read_wait, EPOLLIN | EPOLLRDNORM);
}

static void kbus_set_aside_unlink(struct kbus_dev *dev,
				  struct kbus_qitem *item)
{
	list_del_init(&item->list);
	dev->set_aside_count--;
	item->ksock->set_aside_count--;
}

static void kbus_set_aside_check_empty(struct kbus_dev *dev)
{
	if (list_empty(&dev->set_aside))
		dev->tragic = false;
}

/* Move @k's set-aside entries to its queue: all, or while it has room. */
static void kbus_move_set_aside(struct kbus_ksock *k, bool all)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_qitem *item, *tmp;

	list_for_each_entry_safe(item, tmp, &dev->set_aside, list) {
		if (!k->set_aside_count)
			break;
		if (item->ksock != k)
			continue;
		if (!all && kbus_queue_full(k, false))
			break;
		kbus_set_aside_unlink(dev, item);
		kbus_enqueue(k, item, KBUS_FOR_LISTENER);
	}
	kbus_set_aside_check_empty(dev);
}

void kbus_drain_set_aside(struct kbus_ksock *k)
{
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

static void kbus_items_free(struct list_head *items)
{
	struct kbus_qitem *item, *tmp;

	list_for_each_entry_safe(item, tmp, items, list) {
		list_del(&item->list);
		kbus_qitem_free(item);
	}
}

static int kbus_items_alloc(struct list_head *items, u32 n)
{
	struct kbus_qitem *item;

	while (n--) {
		item = kbus_qitem_alloc();
		if (!item) {
			kbus_items_free(items);
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

	if (!k)
		return;
	if (if_waiting && kbus_outstanding_find(k, req_id) < 0)
		return;
	msg = kbus_msg_synthetic(dev, name, 0);
	item = kbus_qitem_alloc();
	if (!msg || !item) {
		kbus_msg_put(msg);
		kbus_qitem_free(item);
		kbus_outstanding_remove(k, req_id);
		pr_warn_ratelimited("kbus: out of memory, %s to %u lost\n",
				    name, requester);
		return;
	}
	msg->from = from;
	msg->to = requester;
	msg->in_reply_to = *req_id;
	kbus_dbg(dev, "%s [0:%u] to %u for [%u:%u]\n", name,
		 msg->id.serial_num, requester, req_id->network_id,
		 req_id->serial_num);
	kbus_push(k, item, msg, KBUS_FOR_SENDER, NULL);
	kbus_msg_put(msg);
}

/* ------------------------------------------------------------------------
 * Delivery (spec 5.5)
 */

static int kbus_replier_rank(const struct kbus_binding *b)
{
	switch (b->name[b->name_len - 1]) {
	case '*':
		return 1;
	case '%':
		return 2;
	default:
		return 3;
	}
}

/* The Replier binding for @msg's name, by rank (spec 7.2), or NULL. */
static struct kbus_binding *kbus_choose_replier(struct kbus_dev *dev,
						const struct kbus_msg *msg)
{
	struct kbus_binding *b, *best = NULL;
	int rank, best_rank = 0;

	list_for_each_entry(b, &dev->bindings, list) {
		if (!b->is_replier || !kbus_binding_matches(b, msg))
			continue;
		rank = kbus_replier_rank(b);
		if (rank > best_rank) {
			best = b;
			best_rank = rank;
		}
	}
	return best;
}

static int kbus_full_error(const struct kbus_ksock *k, bool is_reply,
			   const struct kbus_msg *msg)
{
	if (!kbus_queue_full(k, is_reply))
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
	if (kbus_outstanding_find(t, &msg->in_reply_to) < 0)
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
 * the chosen ones. A full Listener fails the send with ALL_OR_WAIT/FAIL.
 */
static int kbus_choose_listeners(struct kbus_dev *dev,
				 const struct kbus_msg *msg, u32 *count)
{
	struct kbus_binding *b;

	*count = 0;
	list_for_each_entry(b, &dev->bindings, list) {
		if (!kbus_is_listener_of(b, msg))
			continue;
		b->chosen = !kbus_queue_full(b->ksock, false);
		if (b->chosen) {
			(*count)++;
			continue;
		}
		if (msg->flags & KBUS_BIT_ALL_OR_WAIT)
			return -EAGAIN;
		if (msg->flags & KBUS_BIT_ALL_OR_FAIL)
			return -EBUSY;
	}
	return 0;
}

/*
 * Deliver @msg from @sender (NULL for KBUS itself). Every check, and every
 * allocation, happens before anything is queued: a failure queues nothing.
 */
int kbus_deliver(struct kbus_dev *dev, struct kbus_ksock *sender,
		 struct kbus_msg *msg)
{
	bool request = msg->flags & KBUS_BIT_WANT_A_REPLY;
	struct kbus_binding *replier, *b;
	struct kbus_ksock *target;
	LIST_HEAD(items);
	u32 n;
	int err;

	replier = kbus_choose_replier(dev, msg);
	if (request && !replier)
		return -EADDRNOTAVAIL;
	err = kbus_check_target(dev, msg, &target);
	if (err)
		return err;
	if (!request)
		replier = NULL;
	if (replier) {
		err = kbus_check_replier(replier, msg);
		if (err)
			return err;
	}
	err = kbus_choose_listeners(dev, msg, &n);
	if (err)
		return err;
	err = kbus_items_alloc(&items, n + !!target + !!replier);
	if (!err && replier && sender)
		err = kbus_outstanding_reserve(sender);
	if (err) {
		kbus_items_free(&items);
		return err;
	}

	if (target) {
		kbus_push(target, kbus_items_take(&items), msg,
			  KBUS_FOR_SENDER, NULL);
		if (sender)
			kbus_unreplied_remove(sender, &msg->in_reply_to);
	}
	if (replier) {
		kbus_push(replier->ksock, kbus_items_take(&items), msg,
			  KBUS_FOR_REPLIER, replier);
		if (sender)
			kbus_outstanding_add(sender, &msg->id);
	}
	list_for_each_entry(b, &dev->bindings, list)
		if (kbus_is_listener_of(b, msg) && b->chosen)
			kbus_push(b->ksock, kbus_items_take(&items), msg,
				  KBUS_FOR_LISTENER, b);
	return 0;
}

/*
 * poll() retry of a pending (ALL_OR_WAIT) send (spec 5.9). Leaves the
 * sending state unless the retry says EAGAIN again.
 */
void kbus_retry_pending(struct kbus_ksock *k)
{
	struct kbus_msg *msg = k->wr.msg;
	int err;

	if (!msg) {
		k->sending = false;
		return;
	}
	err = kbus_deliver(k->dev, k, msg);
	if (err == -EAGAIN)
		return;
	if (err == -EADDRNOTAVAIL)
		kbus_answer(k->dev, KBUS_NAME_DISAPPEARED, 0, k->id, &msg->id,
			    false);
	else if (err && (msg->flags & KBUS_BIT_WANT_A_REPLY))
		kbus_answer(k->dev, KBUS_NAME_ERRORSENDING, 0, k->id,
			    &msg->id, false);
	kbus_write_discard(k);
}

/* ------------------------------------------------------------------------
 * Replier Bind Events and the set-aside list (spec 7.6)
 */

static struct kbus_msg *kbus_bind_event(struct kbus_dev *dev, u32 is_bind,
					u32 binder, const char *name, u32 len)
{
	struct kbus_replier_bind_event_data *ev;
	u32 data_len = sizeof(*ev) + kbus_padded_name_len(len);
	struct kbus_msg *msg;

	msg = kbus_msg_synthetic(dev, KBUS_NAME_BIND_EVENT, data_len);
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

/* BIND/UNBIND as Replier with reporting on: all Listeners or EAGAIN. */
static int kbus_report_bind(struct kbus_ksock *k, u32 is_bind,
			    const char *name, u32 len)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_msg *msg;
	int err;

	if (!dev->report_binds)
		return 0;
	msg = kbus_bind_event(dev, is_bind, k->id, name, len);
	if (!msg)
		return -ENOMEM;
	err = kbus_deliver(dev, NULL, msg);
	kbus_msg_put(msg);
	return err == -EBUSY ? -EAGAIN : err;
}

static void kbus_set_aside_add(struct kbus_dev *dev, struct kbus_binding *b,
			       struct kbus_msg *msg)
{
	struct kbus_qitem *item = kbus_qitem_alloc();

	if (!item) {
		pr_warn_ratelimited("kbus: out of memory, bind event lost\n");
		return;
	}
	item->msg = kbus_msg_get(msg);
	item->binding = b;
	item->ksock = b->ksock;
	item->flags = msg->flags;
	list_add_tail(&item->list, &dev->set_aside);
	dev->set_aside_count++;
	b->ksock->set_aside_count++;
}

static bool kbus_msg_is_events_lost(const struct kbus_msg *msg)
{
	return !strcmp(msg->name, KBUS_NAME_EVENTS_LOST);
}

/* Has @k an UnbindEventsLost entry after the last real set-aside event? */
static bool kbus_has_tail_lost(struct kbus_dev *dev, struct kbus_ksock *k)
{
	struct kbus_qitem *item;

	list_for_each_entry_reverse(item, &dev->set_aside, list) {
		if (!kbus_msg_is_events_lost(item->msg))
			break;
		if (item->ksock == k)
			return true;
	}
	return false;
}

static void kbus_set_aside_lost(struct kbus_dev *dev,
				const struct kbus_msg *event)
{
	struct kbus_binding *b;
	struct kbus_msg *lost;

	dev->tragic = true;
	lost = kbus_msg_synthetic(dev, KBUS_NAME_EVENTS_LOST, 0);
	if (!lost) {
		pr_warn_ratelimited("kbus: out of memory, %s lost\n",
				    KBUS_NAME_EVENTS_LOST);
		return;
	}
	list_for_each_entry(b, &dev->bindings, list)
		if (kbus_is_listener_of(b, event) &&
		    !kbus_has_tail_lost(dev, b->ksock))
			kbus_set_aside_add(dev, b, lost);
	kbus_msg_put(lost);
}

/* An unbind event that some Listener had no room for: set it aside. */
static void kbus_set_aside_event(struct kbus_dev *dev, struct kbus_msg *msg)
{
	struct kbus_binding *b;
	u32 n = 0;

	list_for_each_entry(b, &dev->bindings, list)
		if (kbus_is_listener_of(b, msg))
			n++;
	if (!dev->tragic &&
	    dev->set_aside_count + n <= KBUS_MAX_UNSENT_UNBIND_MSGS) {
		list_for_each_entry(b, &dev->bindings, list)
			if (kbus_is_listener_of(b, msg))
				kbus_set_aside_add(dev, b, msg);
	} else {
		kbus_set_aside_lost(dev, msg);
	}
	list_for_each_entry(b, &dev->bindings, list)
		if (kbus_is_listener_of(b, msg))
			kbus_drain_set_aside(b->ksock);
}

/* Unbind event for a Replier binding of a closing Ksock: cannot fail. */
static void kbus_close_bind_event(struct kbus_ksock *k, struct kbus_binding *b)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_msg *msg;
	int err;

	msg = kbus_bind_event(dev, 0, k->id, b->name, b->name_len);
	if (!msg) {
		pr_warn_ratelimited("kbus: out of memory, bind event lost\n");
		return;
	}
	err = kbus_deliver(dev, NULL, msg);
	if (err == -EBUSY)
		kbus_set_aside_event(dev, msg);
	else if (err)
		pr_warn_ratelimited("kbus: error %d, bind event lost\n", err);
	kbus_msg_put(msg);
}

static void kbus_set_aside_remove_binding(struct kbus_dev *dev,
					  const struct kbus_binding *b)
{
	struct kbus_qitem *item, *tmp;

	list_for_each_entry_safe(item, tmp, &dev->set_aside, list) {
		if (item->binding != b)
			continue;
		kbus_set_aside_unlink(dev, item);
		kbus_qitem_free(item);
	}
	kbus_set_aside_check_empty(dev);
}

/* REPORTREPLIERBINDS with 1: current Replier bindings, to the caller only */
int kbus_report_current_binds(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_qitem *item;
	struct kbus_binding *b;
	struct kbus_msg *msg;

	list_for_each_entry(b, &dev->bindings, list) {
		if (!b->is_replier)
			continue;
		if (kbus_queue_full(k, false))
			return -EBUSY;
		msg = kbus_bind_event(dev, 1, b->ksock->id, b->name,
				      b->name_len);
		item = kbus_qitem_alloc();
		if (!msg || !item) {
			kbus_msg_put(msg);
			kbus_qitem_free(item);
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
	struct kbus_binding *b;

	list_for_each_entry(b, &dev->bindings, list)
		if (b->is_replier && kbus_str_eq(b->name, b->name_len,
						 name, len))
			return b->ksock->id;
	return 0;
}

static bool kbus_is_bind_event_name(const char *name, u32 len)
{
	return kbus_str_eq(name, len, KBUS_NAME_BIND_EVENT,
			   sizeof(KBUS_NAME_BIND_EVENT) - 1);
}

int kbus_bind(struct kbus_ksock *k, u32 is_replier, const char *name,
	      u32 len)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_binding *b;
	int err;

	if (!kbus_name_valid(name, len))
		return -EBADMSG;
	if (is_replier && kbus_is_bind_event_name(name, len))
		return -EBADMSG;
	if (is_replier && kbus_find_replier(dev, name, len))
		return -EADDRINUSE;
	b = kzalloc(struct_size(b, name, (size_t)len + 1), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->ksock = k;
	b->is_replier = is_replier;
	b->name_len = len;
	memcpy(b->name, name, len);
	if (is_replier) {
		err = kbus_report_bind(k, 1, name, len);
		if (err) {
			kfree(b);
			return err;
		}
	}
	list_add(&b->list, &dev->bindings);
	kbus_dbg(dev, "ksock %u bound %s '%s'\n", k->id,
		 is_replier ? "replier" : "listener", b->name);
	/* The chosen Replier may have changed: a pending send may get through */
	if (is_replier)
		kbus_wake_writers(dev);
	return 0;
}

/* Remove binding @b of @k and everything that came through it. */
static void kbus_binding_remove(struct kbus_ksock *k, struct kbus_binding *b)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_qitem *item, *tmp;
	LIST_HEAD(removed);

	list_for_each_entry_safe(item, tmp, &k->queue, list) {
		if (item->binding != b)
			continue;
		list_move_tail(&item->list, &removed);
		k->queue_count--;
	}
	kbus_set_aside_remove_binding(dev, b);
	list_del(&b->list);
	kfree(b);

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

	if (!kbus_name_valid(name, len))
		return -EBADMSG;
	list_for_each_entry(b, &dev->bindings, list) {
		if (b->ksock == k && b->is_replier == is_replier &&
		    kbus_str_eq(b->name, b->name_len, name, len)) {
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
	kbus_dbg(dev, "ksock %u unbound '%s'\n", k->id, found->name);
	kbus_binding_remove(k, found);
	return 0;
}

/* ------------------------------------------------------------------------
 * Close (spec 7.7)
 */

/* Empty the queue, answering unread Requests with GoneAway. */
static void kbus_close_queue(struct kbus_ksock *k)
{
	struct kbus_qitem *item, *tmp;

	list_for_each_entry_safe(item, tmp, &k->queue, list) {
		list_del(&item->list);
		k->queue_count--;
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
	LIST_HEAD(mine);

	list_for_each_entry_safe(b, tmp, &dev->bindings, list)
		if (b->ksock == k)
			list_move_tail(&b->list, &mine);
	list_for_each_entry_safe(b, tmp, &mine, list) {
		if (b->is_replier && dev->report_binds)
			kbus_close_bind_event(k, b);
		list_del(&b->list);
		kfree(b);
	}
}

static void kbus_close_set_aside(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;
	struct kbus_qitem *item, *tmp;

	list_for_each_entry_safe(item, tmp, &dev->set_aside, list) {
		if (item->ksock != k)
			continue;
		kbus_set_aside_unlink(dev, item);
		kbus_qitem_free(item);
	}
	kbus_set_aside_check_empty(dev);
}

/* Answer every popped but unanswered Request with Ignored. */
static void kbus_close_unreplied(struct kbus_ksock *k)
{
	struct kbus_unreplied *ur, *tmp;

	list_for_each_entry_safe(ur, tmp, &k->unreplied, list) {
		kbus_answer(k->dev, KBUS_NAME_IGNORED, k->id, ur->requester,
			    &ur->id, true);
		list_del(&ur->list);
		kfree(ur);
	}
	k->unreplied_count = 0;
}

/*
 * Everything a close does, synchronously. The Ksock is taken off the
 * device's list first, so nothing can be addressed to it any more: answers
 * it would address to itself are dropped, and answers to its own
 * outstanding Requests will not be delivered.
 */
void kbus_ksock_teardown(struct kbus_ksock *k)
{
	struct kbus_dev *dev = k->dev;

	list_del_init(&k->list);
	kbus_read_drop(k);
	kbus_write_discard(k);
	kfree(k->outstanding);
	k->outstanding = NULL;
	k->out_count = 0;
	k->out_size = 0;
	kbus_close_queue(k);
	kbus_close_set_aside(k);
	kbus_close_bindings(k);
	kbus_close_unreplied(k);
	kbus_wake_writers(dev);
}
