//! The cache: one slot per key, one fetch per key at a time (a read that arrives while its key is
//! being fetched, by the prefetch or another read, waits on that fetch), entries served at once
//! after their TTL while a background refresh checks whether they moved, and stale entries
//! served only within a bound while the service cannot be reached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::key::{Key, Version};
use crate::metrics::Stats;
use crate::upstream::{Failure, Fetched, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub enabled: bool,
    pub secret_ttl: Duration,
    pub parameter_ttl: Duration,
    /// How long past its TTL an entry is served while refreshes fail with a transient error.
    pub stale_max: Duration,
    /// Entries kept; 0 keeps none (every read fetches), as AWS's extension.
    pub capacity: usize,
}

/// `BatchGetSecretValue` takes at most 20 secret ids a call.
const SECRETS_PER_BATCH: usize = 20;

/// The secret name of a key a batch can read: a secret under `AWSCURRENT` (a batch reads no
/// other stage, and no version id) named by its name. An ARN goes alone: a partial one would
/// match no answer and be read twice, and a full one may name another account's secret of the
/// same name.
fn batchable_secret_id(key: &Key) -> Option<&str> {
    match key {
        Key::Secret { id, at: Version::Stage(stage) } if stage == "AWSCURRENT" && !id.starts_with("arn:") => Some(id),
        _ => None,
    }
}

/// How many TTLs an entry may live on `DescribeSecret` confirmations alone before a refresh
/// reads the value again (15 minutes at the default TTL): `DescribeSecret` still answers when
/// `GetSecretValue` alone is denied or the KMS key is disabled, which only a read notices.
pub const REFETCH_AFTER_TTLS: u32 = 3;

struct Entry {
    body: Bytes,
    version: Option<String>,
    /// When the entry was last known current: fetched, or confirmed by a refresh.
    checked: Instant,
    /// When the value was last read from the service (not merely confirmed).
    fetched: Instant,
}

impl Entry {
    fn new(fetched: Fetched) -> Entry {
        let now = Instant::now();
        Entry { body: fetched.body, version: fetched.version, checked: now, fetched: now }
    }
}

#[derive(Default)]
struct Slot {
    /// Held across the fetch of a missing entry, so that readers of the key wait on it.
    entry: tokio::sync::Mutex<Option<Entry>>,
    refreshing: AtomicBool,
    /// `DescribeSecret` was refused for this key: later refreshes read the value at once rather
    /// than ask again each TTL (the role lacks the action; a new environment asks afresh).
    describe_refused: AtomicBool,
    /// The last use, for eviction (least recently used first).
    used: AtomicU64,
}

pub struct Cache<S> {
    source: Arc<S>,
    policy: Policy,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    tick: AtomicU64,
    pub stats: Arc<Stats>,
}

impl<S: Source> Cache<S> {
    pub fn new(source: Arc<S>, policy: Policy, stats: Arc<Stats>) -> Arc<Cache<S>> {
        Arc::new(Cache { source, policy, slots: Mutex::new(HashMap::new()), tick: AtomicU64::new(0), stats })
    }

    fn ttl(&self, key: &Key) -> Duration {
        match key {
            Key::Secret { .. } => self.policy.secret_ttl,
            Key::Parameter { .. } => self.policy.parameter_ttl,
        }
    }

    /// Whether `key`'s answers are kept at all.
    fn keeps(&self, key: &Key) -> bool {
        self.policy.enabled && self.policy.capacity > 0 && !self.ttl(key).is_zero()
    }

    /// The answer for `key`: from the cache when it may be, else fetched (once, whoever asks).
    pub async fn get(self: &Arc<Self>, key: &Key) -> Result<Bytes, Failure> {
        if !self.keeps(key) {
            Stats::add(&self.stats.misses);
            return self.source.fetch(key).await.map(|f| f.body);
        }
        let slot = self.slot(key);
        let mut entry = slot.entry.lock().await;
        if let Some(found) = entry.as_ref() {
            let age = found.checked.elapsed();
            let ttl = self.ttl(key);
            // Pinned entries too: their value never changes, but it can be deleted or denied.
            if age < ttl {
                Stats::add(&self.stats.hits);
                return Ok(found.body.clone());
            }
            // Checked: the settings bound both, but an overflow here would be a panic on a read.
            if ttl.checked_add(self.policy.stale_max).is_none_or(|bound| age < bound) {
                Stats::add(&self.stats.stale_served);
                let body = found.body.clone();
                drop(entry);
                self.refresh_in_background(key, &slot);
                return Ok(body);
            }
            // Too stale to serve: fetched again below, or the error returned.
        }
        Stats::add(&self.stats.misses);
        match self.source.fetch(key).await {
            Ok(fetched) => {
                let body = fetched.body.clone();
                *entry = Some(Entry::new(fetched));
                Ok(body)
            }
            Err(failure) => {
                *entry = None;
                drop(entry);
                self.forget(key, &slot);
                Err(failure)
            }
        }
    }

    /// Fetches every key at once; returns how many are in. Two or more secrets named by name
    /// under `AWSCURRENT` are read `SECRETS_PER_BATCH` a call (`BatchGetSecretValue`); the rest,
    /// and any a batch could not read, one call each.
    pub async fn prefetch(self: &Arc<Self>, keys: &[Key]) -> usize {
        let mut distinct: Vec<&Key> = Vec::new();
        for key in keys {
            if !distinct.contains(&key) {
                distinct.push(key);
            }
        }
        let (mut batched, mut alone): (Vec<&Key>, Vec<&Key>) =
            distinct.into_iter().partition(|key| self.keeps(key) && batchable_secret_id(key).is_some());
        // Never more in a batch than the cache keeps (the batch would evict its own entries).
        let per_batch = SECRETS_PER_BATCH.min(self.policy.capacity);
        if batched.len() < 2 || per_batch < 2 {
            // One secret costs one call either way, and GetSecretValue is what every role has.
            alone.append(&mut batched);
        }
        let batches = batched.chunks(per_batch.max(1)).map(|chunk| self.prefetch_batch(chunk));
        let singles = alone.iter().map(|key| async move { usize::from(self.get(key).await.is_ok()) });
        let (batched, alone) =
            futures::future::join(futures::future::join_all(batches), futures::future::join_all(singles)).await;
        batched.into_iter().chain(alone).sum()
    }

    /// One `BatchGetSecretValue` for `keys` (distinct current secrets named by name), each key's
    /// slot held while the batch is out, so a read of it waits on this fetch rather than make
    /// its own. A slot busy already (a read fetching it) is left to that read. A key the batch
    /// answered is released at once; one it did not is fetched alone, holding only its own slot.
    async fn prefetch_batch(self: &Arc<Self>, keys: &[&Key]) -> usize {
        let slots: Vec<Arc<Slot>> = keys.iter().map(|key| self.slot(key)).collect();
        let mut held = Vec::new();
        for (i, slot) in slots.iter().enumerate() {
            if let Ok(entry) = slot.entry.try_lock() {
                if entry.is_none() {
                    held.push((i, entry));
                }
            }
        }
        let ids: Vec<String> =
            held.iter().filter_map(|(i, _)| batchable_secret_id(keys[*i])).map(str::to_owned).collect();
        let found = match self.source.fetch_current_batch(&ids).await {
            Ok(found) => found,
            Err(failure) => {
                tracing::info!(secrets = ids.len(), error = %failure, "BatchGetSecretValue refused or failed; fetching one by one");
                Vec::new()
            }
        };
        let mut ready = 0;
        let mut alone = Vec::new();
        for (i, mut entry) in held {
            Stats::add(&self.stats.misses);
            let name = batchable_secret_id(keys[i]).unwrap_or_default();
            // By name: names are unique in the account and region the batch reads.
            let mut named = found.iter().filter(|f| f.name.as_deref() == Some(name));
            match (named.next(), named.next()) {
                (Some(answer), None) => {
                    *entry = Some(Entry::new(answer.fetched.clone()));
                    ready += 1;
                }
                _ => alone.push((i, entry)),
            }
        }
        let fetches = alone.into_iter().map(|(i, mut entry)| {
            let slot = &slots[i];
            async move {
                match self.source.fetch(keys[i]).await {
                    Ok(fetched) => {
                        *entry = Some(Entry::new(fetched));
                        1
                    }
                    Err(_) => {
                        drop(entry);
                        self.forget(keys[i], slot);
                        0
                    }
                }
            }
        });
        ready + futures::future::join_all(fetches).await.into_iter().sum::<usize>()
    }

    fn slot(&self, key: &Key) -> Arc<Slot> {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !slots.contains_key(key) && slots.len() >= self.policy.capacity {
            let oldest = slots.iter().min_by_key(|(_, s)| s.used.load(Ordering::Relaxed)).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                slots.remove(&oldest);
            }
        }
        let slot = slots.entry(key.clone()).or_default().clone();
        slot.used.store(tick, Ordering::Relaxed);
        slot
    }

    /// Drops the key's slot, if it is still this one.
    fn forget(&self, key: &Key, slot: &Arc<Slot>) {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }

    /// One refresh per key at a time, on a task of its own: the read that found the entry
    /// expired has its answer already.
    fn refresh_in_background(self: &Arc<Self>, key: &Key, slot: &Arc<Slot>) {
        if slot.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (cache, key, slot) = (self.clone(), key.clone(), slot.clone());
        tokio::spawn(async move {
            cache.refresh(&key, &slot).await;
            slot.refreshing.store(false, Ordering::Release);
        });
    }

    /// Asks first whether the version under the stage moved (`DescribeSecret`, no value read),
    /// and fetches only when it did, when that cannot be known (parameters, pinned versions), or
    /// when the value was last read `REFETCH_AFTER_TTLS` TTLs ago.
    async fn refresh(&self, key: &Key, slot: &Arc<Slot>) {
        let (known, read_at) = match slot.entry.lock().await.as_ref() {
            Some(entry) => (entry.version.clone(), Some(entry.fetched)),
            None => (None, None),
        };
        let read_ago = read_at.map_or(Duration::MAX, |at| at.elapsed());
        let confirmable = read_ago < self.ttl(key).saturating_mul(REFETCH_AFTER_TTLS);
        let outcome = if key.pinned() {
            // Nothing can move under a version id: only a read tells whether it is still ours.
            self.source.fetch(key).await.map(Some)
        } else if slot.describe_refused.load(Ordering::Relaxed) {
            self.source.fetch(key).await.map(Some)
        } else {
            match self.source.current_version(key).await {
                Ok(Some(current)) if confirmable && known.as_ref() == Some(&current) => Ok(None),
                Ok(_) => self.source.fetch(key).await.map(Some),
                // A role may read a secret without leave to describe it (AWS's extension needs
                // GetSecretValue alone): the read decides whether the entry is still ours.
                Err(Failure::Refused(_)) => {
                    slot.describe_refused.store(true, Ordering::Relaxed);
                    self.source.fetch(key).await.map(Some)
                }
                Err(failure) => Err(failure),
            }
        };
        let mut entry = slot.entry.lock().await;
        if entry.as_ref().map(|e| e.fetched) != read_at {
            // A read fetched the entry while this refresh was out (it was too stale to serve):
            // what it holds is newer than what this refresh brings, or its error.
            return;
        }
        match outcome {
            Ok(None) => {
                if let Some(found) = entry.as_mut() {
                    found.checked = Instant::now();
                }
            }
            Ok(Some(fetched)) => *entry = Some(Entry::new(fetched)),
            Err(failure) => {
                Stats::add(&self.stats.refresh_errors);
                tracing::warn!(kind = failure.kind(), "refresh failed: {failure}");
                if !failure.transient() {
                    // Gone, or no longer ours to read: not served again.
                    *entry = None;
                    drop(entry);
                    self.forget(key, slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::BatchFound;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Fake {
        fetches: AtomicUsize,
        /// How long each coming fetch takes, in order (20 ms once they run out).
        fetch_delays_ms: Mutex<Vec<u64>>,
        describes: AtomicUsize,
        version: Mutex<String>,
        failing: Mutex<Option<Failure>>,
        /// Fails `fetch` alone (`GetSecretValue` denied, the KMS key disabled).
        fetch_refused: AtomicBool,
        /// Fails `current_version` alone (a role without `DescribeSecret`).
        describe_refused: AtomicBool,
        batches: AtomicUsize,
        /// Fails `fetch_current_batch` as a whole (a role without `BatchGetSecretValue`).
        batch_refused: AtomicBool,
        /// Ids a batch answers without (as BatchGetSecretValue lists them under `Errors`).
        batch_leaves_out: Mutex<Vec<String>>,
    }

    impl Source for Fake {
        async fn fetch(&self, _: &Key) -> Result<Fetched, Failure> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            // The value as it is when the call is made, however long the answer takes.
            let version = self.version.lock().unwrap().clone();
            let delay = { self.fetch_delays_ms.lock().unwrap().pop() }.unwrap_or(20);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            if let Some(failure) = self.failing.lock().unwrap().clone() {
                return Err(failure);
            }
            if self.fetch_refused.load(Ordering::SeqCst) {
                return Err(Failure::Refused("AccessDeniedException".into()));
            }
            Ok(Fetched { body: Bytes::from(format!("value-{version}")), version: Some(version) })
        }
        async fn current_version(&self, _: &Key) -> Result<Option<String>, Failure> {
            self.describes.fetch_add(1, Ordering::SeqCst);
            if let Some(failure) = self.failing.lock().unwrap().clone() {
                return Err(failure);
            }
            if self.describe_refused.load(Ordering::SeqCst) {
                return Err(Failure::Refused("AccessDeniedException".into()));
            }
            Ok(Some(self.version.lock().unwrap().clone()))
        }
        async fn fetch_current_batch(&self, ids: &[String]) -> Result<Vec<BatchFound>, Failure> {
            self.batches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.batch_refused.load(Ordering::SeqCst) {
                return Err(Failure::Refused("AccessDeniedException".into()));
            }
            let version = self.version.lock().unwrap().clone();
            let left_out = self.batch_leaves_out.lock().unwrap().clone();
            let found = ids.iter().filter(|id| !left_out.contains(id)).map(|id| BatchFound {
                name: Some(id.clone()),
                fetched: Fetched { body: Bytes::from(format!("{id}-{version}")), version: Some(version.clone()) },
            });
            Ok(found.collect())
        }
    }

    #[tokio::test]
    async fn a_slow_refresh_never_overwrites_what_a_later_read_fetched() {
        let (fake, cache) = cache(100, 200);
        cache.get(&key("a")).await.unwrap();
        // Past the TTL, within the stale bound: served, and refreshed by a slow fetch of version 2.
        *fake.version.lock().unwrap() = "2".into();
        fake.fetch_delays_ms.lock().unwrap().push(1000);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(cache.get(&key("a")).await.unwrap(), "value-1");
        // Version 3 meanwhile, and a read once the entry is too stale to serve: it fetches 3.
        tokio::time::sleep(Duration::from_millis(50)).await;
        *fake.version.lock().unwrap() = "3".into();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(cache.get(&key("a")).await.unwrap(), "value-3");
        // The slow refresh answers with version 2 after that: it must not replace 3.
        let slot = cache.slots.lock().unwrap().get(&key("a")).cloned().expect("the slot");
        for _ in 0..100 {
            if !slot.refreshing.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!slot.refreshing.load(Ordering::Acquire), "the refresh answered");
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 3, "the refresh did fetch");
        // What the slot holds (a read now would find it too stale and fetch anew).
        let held = slot.entry.lock().await.as_ref().map(|e| e.body.clone());
        assert_eq!(held.as_deref(), Some(&b"value-3"[..]));
    }

    /// Room for every key of the prefetch tests.
    fn roomy_cache() -> (Arc<Fake>, Arc<Cache<Fake>>) {
        let (fake, base) = cache(60_000, 0);
        let cache = Cache::new(fake.clone(), Policy { capacity: 8, ..base.policy }, Arc::default());
        (fake, cache)
    }

    #[tokio::test]
    async fn secrets_prefetched_together_are_read_in_one_batch_and_a_read_meanwhile_waits_on_it() {
        let (fake, cache) = roomy_cache();
        let keys = [key("a"), key("b"), key("c"), key("a")];
        let (fetched, read) = futures::future::join(cache.prefetch(&keys), async {
            // Arrives while the batch is in flight.
            tokio::time::sleep(Duration::from_millis(5)).await;
            cache.get(&key("b")).await
        })
        .await;
        assert_eq!(fetched, 3);
        assert_eq!(read.as_deref(), Ok(&b"b-1"[..]));
        for id in ["a", "c"] {
            assert_eq!(cache.get(&key(id)).await.unwrap(), format!("{id}-1"));
        }
        assert_eq!((fake.batches.load(Ordering::SeqCst), fake.fetches.load(Ordering::SeqCst)), (1, 0));
        assert_eq!(cache.stats.misses.load(Ordering::SeqCst), 3, "one miss per secret, none for the reads");
    }

    #[tokio::test]
    async fn a_batch_refused_or_short_of_a_secret_leaves_it_to_a_fetch_of_its_own() {
        let (fake, cache) = roomy_cache();
        fake.batch_refused.store(true, Ordering::SeqCst);
        assert_eq!(cache.prefetch(&[key("a"), key("b"), key("c")]).await, 3);
        assert_eq!((fake.batches.load(Ordering::SeqCst), fake.fetches.load(Ordering::SeqCst)), (1, 3));

        let (fake, cache) = roomy_cache();
        fake.batch_leaves_out.lock().unwrap().push("b".into());
        assert_eq!(cache.prefetch(&[key("a"), key("b"), key("c")]).await, 3);
        assert_eq!((fake.batches.load(Ordering::SeqCst), fake.fetches.load(Ordering::SeqCst)), (1, 1));
        assert_eq!(cache.get(&key("b")).await.unwrap(), "value-1", "b came from its own fetch");

        // Not batched: a lone secret, another stage, a version id.
        let (fake, cache) = roomy_cache();
        let pending = Key::Secret { id: "p".into(), at: Version::Stage("AWSPENDING".into()) };
        let pinned = Key::Secret { id: "v".into(), at: Version::Id("v1".into()) };
        assert_eq!(cache.prefetch(&[key("a"), pending, pinned]).await, 3);
        assert_eq!((fake.batches.load(Ordering::SeqCst), fake.fetches.load(Ordering::SeqCst)), (0, 3));
    }

    fn cache(ttl_ms: u64, stale_ms: u64) -> (Arc<Fake>, Arc<Cache<Fake>>) {
        let fake = Arc::new(Fake { version: Mutex::new("1".into()), ..Fake::default() });
        let policy = Policy {
            enabled: true,
            secret_ttl: Duration::from_millis(ttl_ms),
            parameter_ttl: Duration::from_millis(ttl_ms),
            stale_max: Duration::from_millis(stale_ms),
            capacity: 2,
        };
        (fake.clone(), Cache::new(fake, policy, Arc::default()))
    }

    fn key(id: &str) -> Key {
        Key::Secret { id: id.into(), at: Version::Stage("AWSCURRENT".into()) }
    }

    #[tokio::test]
    async fn an_entry_read_by_version_id_is_read_again_after_its_ttl_and_dropped_when_gone() {
        let (fake, cache) = cache(20, 60_000);
        let pinned = Key::Secret { id: "a".into(), at: Version::Id("v1".into()) };
        cache.get(&pinned).await.unwrap();
        *fake.failing.lock().unwrap() = Some(Failure::NotFound("ResourceNotFoundException".into()));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(cache.get(&pinned).await.is_ok(), "served once past its TTL, refreshed beside");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(matches!(cache.get(&pinned).await, Err(Failure::NotFound(_))));
        assert_eq!(fake.describes.load(Ordering::SeqCst), 0, "no DescribeSecret for a version id");
    }

    #[tokio::test]
    async fn readers_of_a_key_being_fetched_wait_on_that_one_fetch() {
        let (fake, cache) = cache(60_000, 0);
        let a = key("a");
        let reads = (0..5).map(|_| cache.get(&a));
        let answers = futures::future::join_all(reads).await;
        assert!(answers.iter().all(|a| a.as_deref() == Ok(&b"value-1"[..])), "{answers:?}");
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats.hits.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn after_the_ttl_the_old_value_is_served_and_a_moved_version_fetched_once() {
        let (fake, cache) = cache(30, 60_000);
        cache.get(&key("a")).await.unwrap();
        *fake.version.lock().unwrap() = "2".into();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get(&key("a")).await.unwrap(), "value-1", "served at once");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cache.get(&key("a")).await.unwrap(), "value-2");
        assert_eq!((fake.describes.load(Ordering::SeqCst), fake.fetches.load(Ordering::SeqCst)), (1, 2));
    }

    #[tokio::test]
    async fn a_role_that_may_not_describe_refreshes_by_reading_and_keeps_its_entry() {
        let (fake, cache) = cache(30, 60_000);
        fake.describe_refused.store(true, Ordering::SeqCst);
        cache.get(&key("a")).await.unwrap();
        *fake.version.lock().unwrap() = "2".into();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get(&key("a")).await.unwrap(), "value-1", "served at once");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cache.get(&key("a")).await.unwrap(), "value-2", "the read refreshed it");
        assert_eq!(cache.stats.misses.load(Ordering::SeqCst), 1, "kept and refreshed, not dropped and read again");
        assert_eq!(cache.stats.refresh_errors.load(Ordering::SeqCst), 0);
        // The refusal is remembered: the next refresh reads at once, asking no DescribeSecret.
        let asked = fake.describes.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        cache.get(&key("a")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(fake.describes.load(Ordering::SeqCst), asked, "DescribeSecret asked again");
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_outage_is_served_stale_up_to_the_bound_then_errors() {
        let (fake, cache) = cache(20, 100);
        cache.get(&key("a")).await.unwrap();
        *fake.failing.lock().unwrap() = Some(Failure::Unavailable("down".into()));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(cache.get(&key("a")).await.unwrap(), "value-1");
        tokio::time::sleep(Duration::from_millis(110)).await;
        assert_eq!(cache.get(&key("a")).await, Err(Failure::Unavailable("down".into())));
        assert_eq!(cache.stats.refresh_errors.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_key_that_is_gone_is_dropped_at_its_refresh() {
        let (fake, cache) = cache(20, 60_000);
        cache.get(&key("a")).await.unwrap();
        *fake.failing.lock().unwrap() = Some(Failure::NotFound("ResourceNotFoundException".into()));
        tokio::time::sleep(Duration::from_millis(30)).await;
        cache.get(&key("a")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(matches!(cache.get(&key("a")).await, Err(Failure::NotFound(_))));
    }

    #[tokio::test]
    async fn a_value_confirmed_only_by_describe_is_read_again_after_some_ttls() {
        let (fake, cache) = cache(50, 60_000);
        cache.get(&key("a")).await.unwrap();
        // The version never moves, so only a read notices the value is no longer ours.
        fake.fetch_refused.store(true, Ordering::SeqCst);
        let mut answer = Ok(Bytes::new());
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(70)).await;
            answer = cache.get(&key("a")).await;
            if answer.is_err() {
                break;
            }
        }
        assert!(matches!(answer, Err(Failure::Refused(_))), "{answer:?}");
        assert!(fake.describes.load(Ordering::SeqCst) >= 1, "confirmed by DescribeSecret before");
    }

    #[tokio::test]
    async fn a_capacity_of_zero_keeps_nothing() {
        let (fake, base) = cache(60_000, 0);
        let cache = Cache::new(fake.clone(), Policy { capacity: 0, ..base.policy }, Arc::default());
        cache.get(&key("a")).await.unwrap();
        cache.get(&key("a")).await.unwrap();
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
        assert!(cache.slots.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_longest_stale_bound_does_not_overflow() {
        let (fake, base) = cache(20, 0);
        let cache = Cache::new(fake.clone(), Policy { stale_max: Duration::MAX, ..base.policy }, Arc::default());
        cache.get(&key("a")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(cache.get(&key("a")).await.unwrap(), "value-1", "served stale, not a panic");
    }

    #[tokio::test]
    async fn the_least_recently_used_entry_makes_room() {
        let (fake, cache) = cache(60_000, 0);
        cache.get(&key("a")).await.unwrap();
        cache.get(&key("b")).await.unwrap();
        cache.get(&key("a")).await.unwrap();
        cache.get(&key("c")).await.unwrap();
        cache.get(&key("a")).await.unwrap();
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 3, "a stayed");
        cache.get(&key("b")).await.unwrap();
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 4, "b was evicted");
    }
}
