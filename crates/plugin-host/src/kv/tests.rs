use std::collections::BTreeMap;

use super::*;

fn got(kv: &KvStore, key: &[u8]) -> Option<Vec<u8>> {
    kv.get(key).unwrap()
}

/// A store whose runs go to a fresh directory under the system's
/// temporary one (removed with the returned guard).
/// A snapshot whose runs are all written (a successor's).
fn snap(plugin: Option<Vec<u8>>, kv: &mut KvStore) -> Result<Option<Vec<u8>>, String> {
    wrap(plugin, kv, false).map(|(state, _)| state)
}

fn on_disk(budget: usize) -> (KvStore, TempDir) {
    let dir = TempDir::new();
    let mut kv = KvStore::new(budget);
    kv.set_dir(&dir.0);
    (kv, dir)
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "weir-kv-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        TempDir(path)
    }

    fn runs(&self) -> usize {
        std::fs::read_dir(&self.0).map_or(0, |d| d.count())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_put_is_read_back_scanned_in_key_order_and_deleted() {
    let mut kv = KvStore::new(1 << 20);
    kv.put(b"b".to_vec(), b"2".to_vec()).unwrap();
    kv.put(b"a".to_vec(), b"1".to_vec()).unwrap();
    kv.put(b"c".to_vec(), b"3".to_vec()).unwrap();
    assert_eq!(got(&kv, b"a"), Some(b"1".to_vec()));
    let keys: Vec<_> = kv
        .scan(b"b", 10)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, [b"b".to_vec(), b"c".to_vec()]);
    assert_eq!(kv.scan(b"", 1).unwrap().len(), 1);
    kv.delete(b"a").unwrap();
    assert_eq!(got(&kv, b"a"), None);
    let keys: Vec<_> = kv
        .scan(b"", 10)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, [b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn a_failed_calls_writes_are_undone_and_a_successful_calls_kept() {
    let mut kv = KvStore::new(1 << 20);
    kv.put(b"kept".to_vec(), b"1".to_vec()).unwrap();
    kv.put(b"gone".to_vec(), b"2".to_vec()).unwrap();
    // Room in the index for the call's keys: its size is then the arena's.
    for i in 0u8..6 {
        kv.put(vec![i], vec![i]).unwrap();
    }
    let (before, bytes) = (kv.clone(), kv.bytes());
    kv.begin();
    kv.put(b"kept".to_vec(), b"changed".to_vec()).unwrap();
    kv.put(b"kept".to_vec(), b"changed again".to_vec()).unwrap();
    kv.delete(b"gone").unwrap();
    kv.put(b"new".to_vec(), b"3".to_vec()).unwrap();
    kv.put_with_ttl(b"ttl".to_vec(), b"4".to_vec(), 10).unwrap();
    assert_eq!(kv.rollback(), 5);
    assert_eq!(kv, before);
    assert_eq!(kv.bytes(), bytes);
    kv.begin();
    kv.put(b"new".to_vec(), b"3".to_vec()).unwrap();
    kv.commit().unwrap();
    assert_eq!(kv.rollback(), 0, "nothing left to undo after a commit");
    assert_eq!(got(&kv, b"new"), Some(b"3".to_vec()));
}

#[test]
fn a_failed_calls_delete_of_a_key_on_disk_is_undone() {
    let (mut kv, _dir) = on_disk(1 << 20);
    kv.put(b"k".to_vec(), b"1".to_vec()).unwrap();
    kv.flush().unwrap();
    kv.begin();
    kv.delete(b"k").unwrap();
    assert_eq!(got(&kv, b"k"), None);
    kv.rollback();
    assert_eq!(got(&kv, b"k"), Some(b"1".to_vec()));
}

#[test]
fn one_call_writing_past_the_budget_is_refused_and_changes_nothing() {
    let mut kv = KvStore::new(8 << 10);
    kv.begin();
    let mut refused = None;
    for i in 0u8..20 {
        if let Err(e) = kv.put(vec![i], vec![i; 1000]) {
            refused = Some((i, e));
            break;
        }
    }
    let (last, err) = refused.expect("20 kB don't go in 8 kB");
    assert!(err.contains("state store is full"), "{err}");
    assert!(last >= 5, "{last} values of 1 kB went in 8 kB");
    assert_eq!(got(&kv, &[last]), None);
    assert!((0..last).all(|i| got(&kv, &[i]) == Some(vec![i; 1000])));
    assert!(kv.bytes() <= kv.budget(), "{} bytes held", kv.bytes());
}

#[test]
fn a_table_past_its_share_of_the_budget_goes_to_disk_between_calls() {
    let mut kv = KvStore::new(64 << 10);
    for i in 0u32..2000 {
        kv.begin();
        kv.put(i.to_be_bytes().to_vec(), vec![7; 8]).unwrap();
        kv.commit().unwrap();
        assert!(
            kv.bytes() <= kv.budget() / 4 + 200,
            "the table stays in its share"
        );
    }
    let (runs, entries) = kv.runs();
    assert!(
        runs >= 1 && entries >= 1500,
        "{runs} runs, {entries} entries"
    );
    for i in (0u32..2000).step_by(37) {
        assert_eq!(got(&kv, &i.to_be_bytes()), Some(vec![7; 8]), "key {i}");
    }
    assert_eq!(got(&kv, &5000u32.to_be_bytes()), None);
    let all = kv.scan(&[], u32::MAX).unwrap();
    assert_eq!(all.len(), 2000);
    assert!(
        all.windows(2).all(|w| w[0].0 < w[1].0),
        "scan is in key order"
    );
}

#[test]
fn the_newest_write_wins_across_runs_and_tombstones_hide_older_ones() {
    let (mut kv, _dir) = on_disk(1 << 20);
    for round in 0u8..5 {
        for i in 0u8..50 {
            if (i + round) % 3 == 0 {
                kv.delete(&[i]).unwrap();
            } else {
                kv.put(vec![i], vec![round]).unwrap();
            }
        }
        kv.flush().unwrap();
    }
    let mut model = BTreeMap::new();
    for round in 0u8..5 {
        for i in 0u8..50 {
            if (i + round) % 3 == 0 {
                model.remove(&vec![i]);
            } else {
                model.insert(vec![i], vec![round]);
            }
        }
    }
    for i in 0u8..50 {
        assert_eq!(got(&kv, &[i]), model.get(&vec![i]).cloned(), "key {i}");
    }
    let scanned: BTreeMap<_, _> = kv.scan(&[], 1000).unwrap().into_iter().collect();
    assert_eq!(scanned, model);
    kv.settle();
    assert!(kv.runs().0 <= 2, "runs merge: {:?}", kv.runs());
    for i in 0u8..50 {
        assert_eq!(
            got(&kv, &[i]),
            model.get(&vec![i]).cloned(),
            "key {i}, merged"
        );
    }
    let scanned: BTreeMap<_, _> = kv.scan(&[], 1000).unwrap().into_iter().collect();
    assert_eq!(scanned, model);
}

#[test]
fn a_ttl_counts_event_time_from_the_watermark_at_the_put() {
    let mut kv = KvStore::new(1 << 20);
    kv.put_with_ttl(b"early".to_vec(), vec![1], 10).unwrap();
    kv.advance(1_000_000);
    kv.put_with_ttl(b"late".to_vec(), vec![2], 10).unwrap();
    kv.put(b"kept".to_vec(), vec![3]).unwrap();
    kv.advance(1_009_999);
    assert!(got(&kv, b"early").is_some() && got(&kv, b"late").is_some());
    kv.advance(1_010_000);
    assert_eq!((got(&kv, b"early"), got(&kv, b"late")), (None, None));
    assert_eq!(got(&kv, b"kept"), Some(vec![3]));
    assert_eq!(kv.scan(&[], 10).unwrap(), [(b"kept".to_vec(), vec![3])]);
}

#[test]
fn entries_on_disk_expire_like_entries_in_memory() {
    let (mut kv, _dir) = on_disk(1 << 20);
    kv.put_with_ttl(b"before".to_vec(), vec![1], 10).unwrap();
    kv.flush().unwrap();
    kv.advance(1_000_000);
    kv.put_with_ttl(b"after".to_vec(), vec![2], 20).unwrap();
    kv.flush().unwrap();
    kv.advance(1_010_000);
    assert_eq!(got(&kv, b"before"), None);
    assert_eq!(got(&kv, b"after"), Some(vec![2]));
    assert_eq!(kv.scan(&[], 10).unwrap().len(), 1);
    kv.advance(1_020_000);
    assert!(kv.scan(&[], 10).unwrap().is_empty());
}

#[test]
fn a_store_crosses_a_snapshot_with_the_plugins_own_state_bit_for_bit() {
    let mut kv = KvStore::new(1 << 20);
    kv.put(b"a".to_vec(), b"1".to_vec()).unwrap();
    kv.put_with_ttl(b"t".to_vec(), b"x".to_vec(), 5).unwrap();
    let state = snap(Some(b"plugin".to_vec()), &mut kv).unwrap().unwrap();
    let (plugin, back) = unwrap(&state, &KvStore::new(1 << 20)).unwrap();
    assert_eq!(plugin.as_deref(), Some(&b"plugin"[..]));
    assert_eq!(back, kv);
    // An empty store leaves the plugin's bytes as they are.
    let mut empty = KvStore::new(1 << 20);
    assert_eq!(
        snap(Some(b"p".to_vec()), &mut empty).unwrap(),
        Some(b"p".to_vec())
    );
    assert_eq!(unwrap(b"p", &empty).unwrap().0, Some(b"p".to_vec()));
}

#[test]
fn a_snapshot_of_a_store_on_disk_writes_only_what_changed_and_restores_it() {
    let (mut kv, dir) = on_disk(1 << 20);
    for i in 0u32..1000 {
        kv.put(i.to_be_bytes().to_vec(), i.to_le_bytes().to_vec())
            .unwrap();
    }
    let first = snap(None, &mut kv).unwrap().unwrap();
    assert!(
        first.len() < 300,
        "a list of runs, not the entries: {} bytes",
        first.len()
    );
    kv.put(b"new".to_vec(), b"v".to_vec()).unwrap();
    kv.delete(&7u32.to_be_bytes()).unwrap();
    let second = snap(None, &mut kv).unwrap().unwrap();
    let (_, back) = unwrap(&second, &KvStore::new(1 << 20)).unwrap();
    assert_eq!(got(&back, b"new"), Some(b"v".to_vec()));
    assert_eq!(got(&back, &7u32.to_be_bytes()), None);
    assert_eq!(
        got(&back, &8u32.to_be_bytes()),
        Some(8u32.to_le_bytes().to_vec())
    );
    // The first snapshot still reads as it was: runs are never changed.
    let (_, old) = unwrap(&first, &KvStore::new(1 << 20)).unwrap();
    assert_eq!(
        got(&old, &7u32.to_be_bytes()),
        Some(7u32.to_le_bytes().to_vec())
    );
    assert_eq!(got(&old, b"new"), None);
    assert!(dir.runs() >= 2);
}

#[test]
fn runs_no_kept_snapshot_names_are_collected_once_old_and_closed() {
    let (mut kv, dir) = on_disk(1 << 20);
    let mut states = Vec::new();
    // Four snapshots of a key each: four runs of a size, merged into one.
    for key in [b"a", b"b", b"c", b"d"] {
        kv.put(key.to_vec(), b"1".to_vec()).unwrap();
        states.push(snap(None, &mut kv).unwrap().unwrap());
    }
    kv.settle();
    assert_eq!(kv.runs().0, 1);
    states.push(snap(None, &mut kv).unwrap().unwrap());
    drop(kv);
    let (first, last) = (&states[0], &states[4]);
    let files = dir.runs();
    assert_eq!(files, 5, "the four merged-away runs are still on disk");
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    assert_eq!(
        collect_garbage(&dir.0, &[], &[], past),
        0,
        "runs newer than the snapshot stay"
    );
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    // A store that reads the first snapshot holds its run open: it stays.
    let (_, reader) = unwrap(first, &KvStore::new(1 << 20)).unwrap();
    assert_eq!(
        collect_garbage(&dir.0, std::slice::from_ref(last), &[], later),
        3
    );
    assert!(
        unwrap(first, &KvStore::new(1 << 20)).is_ok(),
        "its run stays while open"
    );
    drop(reader);
    assert_eq!(
        collect_garbage(&dir.0, std::slice::from_ref(last), &[], later),
        1
    );
    assert_eq!(dir.runs(), 1);
    let (_, back) = unwrap(last, &KvStore::new(1 << 20)).unwrap();
    assert_eq!(got(&back, b"a"), Some(b"1".to_vec()));
    assert_eq!(got(&back, b"d"), Some(b"1".to_vec()));
    assert!(
        unwrap(first, &KvStore::new(1 << 20)).is_err(),
        "its run is gone"
    );
}

#[test]
fn an_old_inline_snapshot_still_restores_and_one_over_budget_spills() {
    let mut kv = KvStore::new(1 << 20);
    for i in 0u32..100 {
        kv.put(i.to_be_bytes().to_vec(), vec![1; 100]).unwrap();
    }
    let state = snap(None, &mut kv).unwrap().unwrap();
    assert!(state.starts_with(b"weirkv02"));
    let (_, small) = unwrap(&state, &KvStore::new(1 << 10)).unwrap();
    assert!(small.runs().0 == 1, "over its share: spilled");
    assert_eq!(got(&small, &42u32.to_be_bytes()), Some(vec![1; 100]));
}

#[test]
fn damaged_snapshots_are_errors_never_panics() {
    let mut kv = KvStore::new(1 << 20);
    kv.put(b"key".to_vec(), b"value".to_vec()).unwrap();
    let state = snap(None, &mut kv).unwrap().unwrap();
    for cut in 0..state.len() {
        let _ = unwrap(&state[..cut], &KvStore::new(1 << 20));
    }
    let mut lying = state.clone();
    let at = 8 + 1 + 17;
    lying[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(unwrap(&lying, &KvStore::new(1 << 20)).is_err());
    let (mut disk, _dir) = on_disk(1 << 20);
    disk.put(b"key".to_vec(), b"value".to_vec()).unwrap();
    let state = snap(None, &mut disk).unwrap().unwrap();
    for cut in 0..state.len() {
        let _ = unwrap(&state[..cut], &KvStore::new(1 << 20));
    }
}

#[test]
fn a_damaged_run_file_is_an_error_never_a_panic() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let spill = run::SpillDir::durable(&dir.0);
    let mut w = run::RunWriter::create(&spill, 10, 10).unwrap();
    w.push(
        b"k",
        Entry {
            value: Some(b"v".to_vec()),
            expiry: Expiry::Never,
        }
        .as_ref(),
    )
    .unwrap();
    let name = w.finish().unwrap().name().to_string();
    let path = dir.0.join(&name);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 5, bytes.len() - 1] {
        let copy = format!("cut{cut}.run");
        std::fs::write(dir.0.join(&copy), &bytes[..cut]).unwrap();
        assert!(run::Run::open(&spill, &copy).is_err(), "cut at {cut}");
    }
}

#[test]
fn insert_new_answers_which_keys_were_new_across_memory_and_disk() {
    let (mut kv, _dir) = on_disk(1 << 20);
    kv.begin();
    // "a", "b", "a", "" : the repeat is not new; the empty key is a key.
    let bits = kv.insert_new(b"aba", &[1, 2, 3, 3], None).unwrap();
    assert_eq!(bits, [0b1011]);
    kv.commit().unwrap();
    kv.flush().unwrap();
    kv.begin();
    let bits = kv.insert_new(b"bc", &[1, 2], None).unwrap();
    assert_eq!(bits, [0b10], "b is on disk, c is new");
    kv.commit().unwrap();
    assert_eq!(got(&kv, b"c"), Some(Vec::new()));
}

#[test]
fn insert_new_with_bad_ends_or_past_the_budget_stores_nothing() {
    let mut kv = KvStore::new(4 << 10);
    kv.begin();
    let err = kv.insert_new(b"abc", &[1, 5], None).unwrap_err();
    assert!(err.contains("key 1 ends at byte 5"), "{err}");
    assert_eq!(got(&kv, b"a"), None, "the batch is all or nothing");
    // 100 keys of 100 bytes: 10 kB for a 4 kB budget.
    let keys: Vec<u8> = (0..100u8).flat_map(|i| [i; 100]).collect();
    let ends: Vec<u32> = (1..=100).map(|i| i * 100).collect();
    let err = kv.insert_new(&keys, &ends, None).unwrap_err();
    assert!(err.contains("full"), "{err}");
    assert_eq!(got(&kv, &[0; 100]), None, "the batch is all or nothing");
    assert_eq!(kv.scan(&[], 10).unwrap(), []);
}

#[test]
fn a_key_inserted_with_a_ttl_is_new_again_once_it_expired() {
    let (mut kv, _dir) = on_disk(1 << 20);
    kv.advance(1_000_000);
    kv.begin();
    assert_eq!(kv.insert_new(b"k", &[1], Some(10)).unwrap(), [1]);
    kv.commit().unwrap();
    kv.flush().unwrap();
    kv.advance(1_005_000);
    kv.begin();
    assert_eq!(kv.insert_new(b"k", &[1], Some(10)).unwrap(), [0]);
    kv.advance(1_010_000);
    assert_eq!(kv.insert_new(b"k", &[1], Some(10)).unwrap(), [1]);
}

#[test]
fn flushes_of_shrinking_size_still_merge_and_every_key_stays_readable() {
    let (mut kv, _dir) = on_disk(1 << 30);
    let mut key = 0u32;
    // Each flush smaller than the one before: no four newest runs are
    // ever within 2× of each other.
    for round in 0..60u32 {
        for _ in 0..(2000 / (round + 1)).max(1) {
            kv.put(key.to_be_bytes().to_vec(), vec![1]).unwrap();
            key += 1;
        }
        kv.flush().unwrap();
    }
    kv.settle();
    assert!(kv.runs().0 <= 12, "{:?}", kv.runs());
    assert!((0..key)
        .step_by(7)
        .all(|k| got(&kv, &k.to_be_bytes()) == Some(vec![1])));
    assert_eq!(kv.scan(&[], u32::MAX).unwrap().len(), key as usize);
}

#[test]
fn big_endian_integer_keys_spread_over_the_table() {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let hasher = BuildHasherDefault::<KeyHasher>::default();
    // The low 12 bits index a 4096-bucket table: they must vary.
    let buckets: std::collections::HashSet<u64> = (0u64..4096)
        .map(|i| hasher.hash_one(i.to_be_bytes().to_vec()) & 4095)
        .collect();
    assert!(
        buckets.len() > 2000,
        "{} of 4096 buckets used",
        buckets.len()
    );
}

#[test]
fn a_merge_installed_after_a_snapshot_was_taken_outlives_that_snapshots_collection() {
    let (mut kv, dir) = on_disk(1 << 20);
    let mut states = Vec::new();
    for key in [b"a", b"b", b"c", b"d"] {
        kv.put(key.to_vec(), b"1".to_vec()).unwrap();
        states.push(snap(None, &mut kv).unwrap().unwrap());
    }
    // The merge of the four runs is written, not yet installed.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(dir.runs(), 5);
    let taken = std::time::SystemTime::now();
    // The next snapshot writes a run and installs the merge, naming both:
    // a checkpoint not yet durable, whose store may be gone by the time
    // the earlier one's collection runs (the node ended). (The file
    // system's own clock may stamp a file written now a few ms earlier.)
    kv.put(b"e".to_vec(), b"1".to_vec()).unwrap();
    let next = snap(None, &mut kv).unwrap().unwrap();
    assert!(
        snapshot_runs(&next).len() == 2,
        "{:?}",
        snapshot_runs(&next)
    );
    drop(kv);
    assert_eq!(collect_garbage(&dir.0, &states, &[], taken), 0);
    assert!(unwrap(&next, &KvStore::new(1 << 20)).is_ok());
}

#[test]
fn one_call_deleting_more_than_the_budget_still_hides_every_key() {
    let (mut kv, _dir) = on_disk(20_000);
    for batch in 0..4 {
        kv.begin();
        for i in 0..100 {
            kv.put(format!("k{batch}-{i}").into_bytes(), b"v".to_vec())
                .unwrap();
        }
        kv.commit().unwrap();
        kv.flush().unwrap();
    }
    // 400 tombstones take twice the budget: all of them are kept.
    kv.begin();
    for batch in 0..4 {
        for i in 0..100 {
            kv.delete(format!("k{batch}-{i}").as_bytes()).unwrap();
        }
    }
    kv.commit().unwrap();
    let visible = (0..4)
        .flat_map(|b| (0..100).map(move |i| format!("k{b}-{i}")))
        .filter(|k| got(&kv, k.as_bytes()).is_some())
        .count();
    assert_eq!(visible, 0);
    assert!(kv.scan(b"", 1000).unwrap().is_empty());
}

#[test]
fn a_watermark_over_a_table_without_expiring_entries_keeps_them() {
    let mut kv = KvStore::new(1 << 20);
    kv.put(b"a".to_vec(), b"1".to_vec()).unwrap();
    kv.put_with_ttl(b"b".to_vec(), b"2".to_vec(), 10).unwrap();
    kv.advance(0);
    kv.advance(20_000);
    assert_eq!(got(&kv, b"a"), Some(b"1".to_vec()));
    assert_eq!(got(&kv, b"b"), None);
    kv.put_with_ttl(b"c".to_vec(), b"3".to_vec(), 10).unwrap();
    kv.advance(40_000);
    assert_eq!(got(&kv, b"c"), None, "a later TTL entry still expires");
}

#[test]
fn a_checkpoint_logs_what_the_table_took_since_the_last_and_restores_from_the_logs() {
    let (mut kv, dir) = on_disk(1 << 20);
    kv.put(b"a".to_vec(), b"1".to_vec()).unwrap();
    kv.flush().unwrap();
    kv.put(b"a".to_vec(), b"2".to_vec()).unwrap();
    kv.put(b"b".to_vec(), b"1".to_vec()).unwrap();
    let (first, written) = wrap(None, &mut kv, true).unwrap();
    written.expect("a log being written").wait().unwrap();
    let first = first.unwrap();
    let names = snapshot_runs(&first);
    assert_eq!(names.len(), 2, "the run and the table's log: {names:?}");
    assert!(names[1].ends_with(".log"), "{names:?}");
    // The table stays in memory: the next checkpoint logs only what came
    // since (a write and a delete).
    kv.put(b"b".to_vec(), b"2".to_vec()).unwrap();
    kv.delete(b"a").unwrap();
    let (second, written) = wrap(None, &mut kv, true).unwrap();
    written.unwrap().wait().unwrap();
    let second = second.unwrap();
    let log = |name: &str| std::fs::metadata(dir.0.join(name)).unwrap().len();
    let names2 = snapshot_runs(&second);
    assert_eq!(&names2[..2], &names[..], "{names2:?}");
    assert!(
        log(&names2[2]) < log(&names[1]),
        "the second log holds only the new entries"
    );
    // Each checkpoint restores as it was taken.
    let (_, back) = unwrap(&first, &KvStore::new(1 << 20)).unwrap();
    assert_eq!(
        (got(&back, b"a"), got(&back, b"b")),
        (Some(b"2".to_vec()), Some(b"1".to_vec()))
    );
    let (_, mut back) = unwrap(&second, &KvStore::new(1 << 20)).unwrap();
    assert_eq!(
        back.scan(b"", 10).unwrap(),
        vec![(b"b".to_vec(), b"2".to_vec())]
    );
    // A restored store's next checkpoint logs its whole table: it names
    // no log it didn't write.
    back.set_dir(&dir.0);
    back.put(b"c".to_vec(), b"1".to_vec()).unwrap();
    let (third, written) = wrap(None, &mut back, true).unwrap();
    written.unwrap().wait().unwrap();
    let third = third.unwrap();
    let names3 = snapshot_runs(&third);
    assert_eq!(names3.len(), 2, "the run and one new log: {names3:?}");
    assert!(!names2.contains(&names3[1]), "{names3:?}");
    let (_, again) = unwrap(&third, &KvStore::new(1 << 20)).unwrap();
    assert_eq!(
        again.clone().scan(b"", 10).unwrap(),
        vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"1".to_vec())
        ]
    );
}

#[test]
fn a_frozen_table_answers_reads_and_a_checkpoint_waits_for_its_run() {
    let (mut kv, _dir) = on_disk(1 << 20);
    kv.put(b"a".to_vec(), b"1".to_vec()).unwrap();
    kv.flush().unwrap();
    kv.put(b"a".to_vec(), b"2".to_vec()).unwrap();
    kv.put(b"b".to_vec(), b"1".to_vec()).unwrap();
    kv.freeze().unwrap().expect("a run being written");
    // The frozen table answers before the older run, the live table
    // before it.
    assert_eq!(got(&kv, b"a"), Some(b"2".to_vec()));
    kv.put(b"b".to_vec(), b"2".to_vec()).unwrap();
    assert_eq!(got(&kv, b"b"), Some(b"2".to_vec()));
    kv.delete(b"a").unwrap();
    assert_eq!(got(&kv, b"a"), None);
    // "a" is deleted (new again), "b" is in the table (seen).
    assert_eq!(kv.insert_new(b"ab", &[1, 2], None).unwrap(), vec![0b01]);
    // A checkpoint names the frozen run (maybe still being written) and
    // the table's log, and is durable once both are.
    let (state, written) = wrap(None, &mut kv, true).unwrap();
    written.unwrap().wait().unwrap();
    let (_, mut back) = unwrap(&state.unwrap(), &KvStore::new(1 << 20)).unwrap();
    assert_eq!(
        back.scan(b"", 10).unwrap(),
        vec![(b"a".to_vec(), vec![]), (b"b".to_vec(), b"2".to_vec())]
    );
}

#[test]
fn rewriting_the_same_keys_call_after_call_keeps_the_table_in_memory_and_small() {
    // 100 keys rewritten 5,000 times each: 10 MB appended to the arena,
    // which compaction keeps to the live entries.
    let mut kv = KvStore::new(1 << 20);
    for round in 0u32..5_000 {
        kv.begin();
        for k in 0u8..100 {
            kv.put(vec![k], round.to_le_bytes().to_vec()).unwrap();
        }
        // A scan orders the table; a compaction at the commit moves it.
        assert_eq!(kv.scan(&[], 1).unwrap().len(), 1);
        kv.commit().unwrap();
        let scanned = kv.scan(&[], 200).unwrap();
        assert_eq!(scanned.len(), 100);
        assert!(scanned.iter().all(|(_, v)| *v == round.to_le_bytes()));
    }
    assert_eq!(kv.runs(), (0, 0), "nothing spilled");
    assert!(
        kv.bytes() < 64 << 10,
        "{} bytes for 100 live keys",
        kv.bytes()
    );
    assert!((0u8..100).all(|k| got(&kv, &[k]) == Some(4_999u32.to_le_bytes().to_vec())));
}

#[test]
fn a_failed_call_that_filled_new_chunks_leaves_the_table_as_it_found_it() {
    let mut kv = KvStore::new(1 << 20);
    for k in 0u16..2_000 {
        kv.put(k.to_be_bytes().to_vec(), vec![1; 10]).unwrap();
    }
    let (before, bytes) = (kv.clone(), kv.bytes());
    kv.begin();
    // Overwrites, deletes and new keys: several new chunks.
    for k in 0u16..1_000 {
        kv.put(k.to_be_bytes().to_vec(), vec![2; 100]).unwrap();
        kv.delete(&(k + 1_000).to_be_bytes()).unwrap();
    }
    kv.put(b"new".to_vec(), vec![3; 100]).unwrap();
    kv.rollback();
    assert_eq!(kv, before);
    // The call appended ~220 kB: cut back, all but the list of chunks
    // (24 bytes a chunk it had grown to).
    assert!(
        kv.bytes() < bytes + 1024,
        "{} bytes, {bytes} before",
        kv.bytes()
    );
    // The arena takes writes where the call's were.
    kv.put(b"after".to_vec(), vec![4]).unwrap();
    assert_eq!(got(&kv, b"after"), Some(vec![4]));
    assert!((0u16..2_000).all(|k| got(&kv, &k.to_be_bytes()) == Some(vec![1; 10])));
}

#[test]
fn deleting_one_key_on_disk_again_and_again_stores_one_tombstone() {
    let (mut kv, _dir) = on_disk(1 << 20);
    kv.put(b"k".to_vec(), b"1".to_vec()).unwrap();
    kv.flush().unwrap();
    kv.begin();
    kv.delete(b"k").unwrap();
    let once = kv.bytes();
    for _ in 0..100_000 {
        kv.delete(b"k").unwrap();
    }
    assert_eq!(kv.bytes(), once);
    kv.commit().unwrap();
    assert_eq!(got(&kv, b"k"), None);
}

/// A small xorshift: the same operations on every run of a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn random_calls_committed_or_undone_read_as_a_map_would_across_spills_and_snapshots() {
    for seed in [1u64, 7, 2026] {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // 64 KiB: a table of a few hundred entries, so calls spill, freeze,
        // compact and merge all along.
        let (mut kv, dir) = on_disk(64 << 10);
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for call in 0..3_000 {
            kv.begin();
            let mut after = model.clone();
            for _ in 0..rng.below(20) {
                // Few keys (rewrites, deletes of present keys), sizes that
                // vary (chunks fill at different places).
                let key = format!("k{}", rng.below(300)).into_bytes();
                match rng.below(10) {
                    0..=4 => {
                        let value = vec![rng.below(256) as u8; rng.below(40) as usize];
                        kv.put(key.clone(), value.clone()).unwrap();
                        after.insert(key, value);
                    }
                    5..=6 => {
                        kv.delete(&key).unwrap();
                        after.remove(&key);
                    }
                    _ => {
                        let new = kv.insert_new(&key, &[key.len() as u32], None).unwrap();
                        assert_eq!(
                            new[0] == 1,
                            !after.contains_key(&key),
                            "seed {seed} call {call}"
                        );
                        after.entry(key).or_default();
                    }
                }
            }
            match rng.below(4) {
                0 => {
                    kv.rollback();
                }
                _ => {
                    kv.commit().unwrap();
                    model = after;
                }
            }
            if rng.below(50) == 0 {
                // A checkpoint (its run written on the side) or a
                // successor's snapshot, restored into a fresh store.
                let (state, written) = wrap(None, &mut kv, rng.below(2) == 0).unwrap();
                if let Some(w) = written {
                    w.wait().unwrap();
                }
                let (_, back) = unwrap(&state.unwrap(), &kv).unwrap();
                let scanned: BTreeMap<_, _> = back
                    .clone()
                    .scan(&[], u32::MAX)
                    .unwrap()
                    .into_iter()
                    .collect();
                assert_eq!(scanned, model, "seed {seed}, restored at call {call}");
            }
            let key = format!("k{}", rng.below(300)).into_bytes();
            assert_eq!(
                got(&kv, &key),
                model.get(&key).cloned(),
                "seed {seed} call {call}"
            );
        }
        let scanned: BTreeMap<_, _> = kv.scan(&[], u32::MAX).unwrap().into_iter().collect();
        assert_eq!(scanned, model, "seed {seed}");
        assert!(dir.runs() > 0, "it spilled");
    }
}

#[test]
fn a_damaged_log_is_an_error_never_a_panic() {
    let (mut kv, dir) = on_disk(1 << 20);
    kv.put(b"key".to_vec(), b"value".to_vec()).unwrap();
    kv.put_with_ttl(b"ttl".to_vec(), b"v".to_vec(), 10).unwrap();
    let (state, written) = wrap(None, &mut kv, true).unwrap();
    written.unwrap().wait().unwrap();
    let state = state.unwrap();
    let log = dir.0.join(&snapshot_runs(&state)[0]);
    let bytes = std::fs::read(&log).unwrap();
    for cut in 0..bytes.len() {
        std::fs::write(&log, &bytes[..cut]).unwrap();
        let err = unwrap(&state, &KvStore::new(1 << 20))
            .map(|_| ())
            .unwrap_err();
        assert!(err.contains("no mark at its end"), "cut at {cut}: {err}");
    }
    // Entries cut short inside a whole file (its length says so).
    let mut short = bytes[..5].to_vec();
    short.extend_from_slice(&5u64.to_le_bytes());
    short.extend_from_slice(b"weirlog1");
    std::fs::write(&log, &short).unwrap();
    let err = unwrap(&state, &KvStore::new(1 << 20))
        .map(|_| ())
        .unwrap_err();
    assert!(err.contains("cut short"), "{err}");
    let mut flipped = bytes.clone();
    flipped[8] = 9;
    std::fs::write(&log, &flipped).unwrap();
    let err = unwrap(&state, &KvStore::new(1 << 20))
        .map(|_| ())
        .unwrap_err();
    assert!(err.contains("expiry kind"), "{err}");
}
