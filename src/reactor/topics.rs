//! Pub/sub topics of one server: which connections subscribed to which names.
//!
//! A topic keeps its subscribers in a vector, so a publish walks contiguous memory without
//! hashing. Each member remembers, per topic, its position in that vector, so unsubscribing
//! is a swap-remove plus one fix-up of the member that moved. Per subscription this costs one
//! `(key, value)` pair on the topic's side and one `(topic, position)` pair on the member's
//! side; a topic's name is stored once however many subscribe.

use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;

/// The longest topic name, in bytes.
pub(crate) const MAX_TOPIC_BYTES: usize = 1024;

/// Default cap on one connection's subscriptions.
pub(crate) const DEFAULT_MAX_SUBSCRIPTIONS: usize = 10_000;

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// Empty name.
    Empty,
    /// Longer than [`MAX_TOPIC_BYTES`].
    TooLong,
    /// The member already has its maximum number of subscriptions.
    TooMany,
}

type TopicId = u32;

struct Topic<K, V> {
    name: Rc<str>,
    subscribers: Vec<(K, V)>,
}

#[derive(Clone, Copy)]
struct Membership {
    topic: TopicId,
    position: u32,
}

/// Subscriptions of members `K` (connection keys) carrying values `V` (the connections).
pub struct Topics<K, V> {
    by_name: HashMap<Rc<str>, TopicId>,
    slots: Vec<Option<Topic<K, V>>>,
    free: Vec<TopicId>,
    members: HashMap<K, Vec<Membership>>,
    subscriptions: usize,
}

impl<K, V> Default for Topics<K, V> {
    fn default() -> Self {
        Topics {
            by_name: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            members: HashMap::new(),
            subscriptions: 0,
        }
    }
}

/// Pushes without the jump to 4 slots a first push makes: most topics and most members
/// have few subscriptions, and with many of them that slack would be most of the memory.
fn push_compact<T>(v: &mut Vec<T>, item: T) {
    if v.len() == v.capacity() && v.capacity() < 4 {
        v.reserve_exact(1);
    }
    v.push(item);
}

/// Checks a topic name's length (UTF-8 is the caller's: a `&str` already is).
pub fn check_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        Err(TopicError::Empty)
    } else if name.len() > MAX_TOPIC_BYTES {
        Err(TopicError::TooLong)
    } else {
        Ok(())
    }
}

impl<K: Copy + Eq + Hash, V> Topics<K, V> {
    /// Subscribes `key` (carrying `value`) to `name`: `Ok(true)` when new, `Ok(false)` when
    /// it already was (then `value` is dropped).
    pub fn subscribe(&mut self, key: K, value: V, name: &str, max_per_member: usize) -> Result<bool, TopicError> {
        check_name(name)?;
        let existing = self.by_name.get(name).copied();
        let memberships = self.members.get(&key);
        if let (Some(id), Some(list)) = (existing, memberships) {
            if list.iter().any(|m| m.topic == id) {
                return Ok(false);
            }
        }
        if memberships.map_or(0, Vec::len) >= max_per_member {
            return Err(TopicError::TooMany);
        }
        let id = existing.unwrap_or_else(|| self.create(name));
        let topic = self.slots[id as usize].as_mut().expect("named topics have a slot");
        let position = u32::try_from(topic.subscribers.len()).expect("fewer than 2^32 subscribers");
        push_compact(&mut topic.subscribers, (key, value));
        push_compact(self.members.entry(key).or_default(), Membership { topic: id, position });
        self.subscriptions += 1;
        Ok(true)
    }

    fn create(&mut self, name: &str) -> TopicId {
        let name: Rc<str> = Rc::from(name);
        let topic = Topic { name: name.clone(), subscribers: Vec::new() };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(topic);
                id
            }
            None => {
                self.slots.push(Some(topic));
                TopicId::try_from(self.slots.len() - 1).expect("fewer than 2^32 topics")
            }
        };
        self.by_name.insert(name, id);
        id
    }

    /// Ends `key`'s subscription to `name`; false when there was none.
    pub fn unsubscribe(&mut self, key: K, name: &str) -> bool {
        let Some(&id) = self.by_name.get(name) else { return false };
        let Some(list) = self.members.get_mut(&key) else { return false };
        let Some(at) = list.iter().position(|m| m.topic == id) else { return false };
        let membership = list.swap_remove(at);
        if list.is_empty() {
            self.members.remove(&key);
        }
        self.leave(membership);
        true
    }

    /// Removes one subscriber from a topic's vector (the member's own record is gone).
    fn leave(&mut self, membership: Membership) {
        let id = membership.topic;
        let topic = self.slots[id as usize].as_mut().expect("a membership names a live topic");
        let position = membership.position as usize;
        topic.subscribers.swap_remove(position);
        if let Some(&(moved, _)) = topic.subscribers.get(position) {
            // The last subscriber now sits where the removed one was: tell it.
            let record = self
                .members
                .get_mut(&moved)
                .and_then(|list| list.iter_mut().find(|m| m.topic == id))
                .expect("every subscriber has a membership");
            record.position = membership.position;
        }
        self.subscriptions -= 1;
        if topic.subscribers.is_empty() {
            self.by_name.remove(&topic.name);
            self.slots[id as usize] = None;
            self.free.push(id);
        }
    }

    /// Ends every subscription of `key` (it closed); returns how many there were.
    pub fn remove_member(&mut self, key: K) -> usize {
        let Some(list) = self.members.remove(&key) else { return 0 };
        let n = list.len();
        for membership in list {
            self.leave(membership);
        }
        n
    }

    /// Is `key` subscribed to `name`?
    pub fn is_subscribed(&self, key: K, name: &str) -> bool {
        match (self.by_name.get(name), self.members.get(&key)) {
            (Some(&id), Some(list)) => list.iter().any(|m| m.topic == id),
            _ => false,
        }
    }

    /// The subscribers of `name` (empty when nobody subscribed).
    pub fn subscribers(&self, name: &str) -> &[(K, V)] {
        self.by_name
            .get(name)
            .and_then(|&id| self.slots[id as usize].as_ref())
            .map_or(&[], |t| t.subscribers.as_slice())
    }

    /// How many subscribe to `name`.
    pub fn subscriber_count(&self, name: &str) -> usize {
        self.subscribers(name).len()
    }

    /// How many subscriptions `key` has.
    pub fn subscriptions_of(&self, key: K) -> usize {
        self.members.get(&key).map_or(0, Vec::len)
    }

    /// Topics with at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.by_name.len()
    }

    /// All subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &Topics<u32, &'static str>, topic: &str) -> Vec<&'static str> {
        let mut v: Vec<_> = t.subscribers(topic).iter().map(|&(_, v)| v).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn subscribe_is_idempotent_and_counts() {
        let mut t = Topics::default();
        assert_eq!(t.subscribe(1, "a", "news", 10), Ok(true));
        assert_eq!(t.subscribe(1, "a", "news", 10), Ok(false));
        assert_eq!(t.subscribe(2, "b", "news", 10), Ok(true));
        assert_eq!(t.subscriber_count("news"), 2);
        assert_eq!(t.subscription_count(), 2);
        assert!(t.is_subscribed(1, "news"));
        assert!(!t.is_subscribed(3, "news"));
        assert!(!t.is_subscribed(1, "sport"));
        assert_eq!(names(&t, "news"), ["a", "b"]);
    }

    #[test]
    fn names_are_checked() {
        let mut t: Topics<u32, ()> = Topics::default();
        assert_eq!(t.subscribe(1, (), "", 10), Err(TopicError::Empty));
        let long = "x".repeat(MAX_TOPIC_BYTES + 1);
        assert_eq!(t.subscribe(1, (), &long, 10), Err(TopicError::TooLong));
        assert_eq!(t.subscribe(1, (), &long[..MAX_TOPIC_BYTES], 10), Ok(true));
        assert_eq!(t.topic_count(), 1);
    }

    #[test]
    fn the_cap_per_member_holds_and_frees_up() {
        let mut t: Topics<u32, ()> = Topics::default();
        for i in 0..3 {
            assert_eq!(t.subscribe(7, (), &format!("t{i}"), 3), Ok(true));
        }
        assert_eq!(t.subscribe(7, (), "t3", 3), Err(TopicError::TooMany));
        // Re-subscribing to one it has is not a new subscription.
        assert_eq!(t.subscribe(7, (), "t0", 3), Ok(false));
        assert!(t.unsubscribe(7, "t1"));
        assert_eq!(t.subscribe(7, (), "t3", 3), Ok(true));
        // Another member is not affected.
        assert_eq!(t.subscribe(8, (), "t3", 3), Ok(true));
    }

    #[test]
    fn unsubscribe_keeps_the_moved_member_findable() {
        let mut t = Topics::default();
        for (k, v) in [(1, "a"), (2, "b"), (3, "c"), (4, "d")] {
            t.subscribe(k, v, "room", 10).unwrap();
            t.subscribe(k, v, &format!("own{k}"), 10).unwrap();
        }
        // Removing the first moves the last ("d") into its place.
        assert!(t.unsubscribe(1, "room"));
        assert!(!t.unsubscribe(1, "room"));
        assert_eq!(names(&t, "room"), ["b", "c", "d"]);
        // "d" must still be removable by its recorded position.
        assert!(t.unsubscribe(4, "room"));
        assert_eq!(names(&t, "room"), ["b", "c"]);
        assert!(t.unsubscribe(2, "room"));
        assert!(t.unsubscribe(3, "room"));
        assert_eq!(t.subscriber_count("room"), 0);
        assert_eq!(t.topic_count(), 4); // the own* topics
        assert_eq!(t.subscription_count(), 4);
    }

    #[test]
    fn removing_a_member_ends_all_its_subscriptions_and_empty_topics_go() {
        let mut t = Topics::default();
        for k in 0..5u32 {
            t.subscribe(k, k, "all", 100).unwrap();
            t.subscribe(k, k, if k % 2 == 0 { "even" } else { "odd" }, 100).unwrap();
        }
        t.subscribe(9, 9, "solo", 100).unwrap();
        assert_eq!(t.remove_member(9), 1);
        assert_eq!(t.topic_count(), 3);
        assert_eq!(t.remove_member(0), 2);
        assert_eq!(t.remove_member(0), 0);
        assert_eq!(t.subscriber_count("all"), 4);
        assert_eq!(t.subscriber_count("even"), 2);
        for k in 1..5 {
            t.remove_member(k);
        }
        assert_eq!(t.topic_count(), 0);
        assert_eq!(t.subscription_count(), 0);
        // Freed slots are reused.
        t.subscribe(1, 1, "again", 100).unwrap();
        assert_eq!(t.slots.len(), 4);
    }

    #[test]
    fn a_random_workload_matches_a_simple_model() {
        use std::collections::BTreeSet;
        let mut t: Topics<u32, u32> = Topics::default();
        let mut model: BTreeSet<(u32, u32)> = BTreeSet::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let member = (x % 23) as u32;
            let topic = ((x >> 8) % 17) as u32;
            let name = format!("t{topic}");
            match (x >> 20) % 5 {
                0 | 1 => {
                    let new = t.subscribe(member, member, &name, 1000).unwrap();
                    assert_eq!(new, model.insert((member, topic)));
                }
                2 | 3 => assert_eq!(t.unsubscribe(member, &name), model.remove(&(member, topic))),
                _ => {
                    let n = t.remove_member(member);
                    let before = model.len();
                    model.retain(|&(m, _)| m != member);
                    assert_eq!(n, before - model.len());
                }
            }
        }
        assert_eq!(t.subscription_count(), model.len());
        for topic in 0..17u32 {
            let name = format!("t{topic}");
            let mut got: Vec<u32> = t
                .subscribers(&name)
                .iter()
                .map(|&(k, v)| {
                    assert_eq!(k, v);
                    k
                })
                .collect();
            got.sort_unstable();
            let want: Vec<u32> = model.iter().filter(|&&(_, tp)| tp == topic).map(|&(m, _)| m).collect();
            assert_eq!(got, want, "topic {name}");
        }
    }
}
