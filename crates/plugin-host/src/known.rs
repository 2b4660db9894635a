//! The function bodies the background optimizer has compiled. A new
//! version made almost wholly of bodies compiled before (an edit of a few
//! functions) builds optimized at once: the incremental cache
//! ([`crate::code_cache`]) makes that build cost about what Winch's does
//! (the stamp test plugin: 95–100 vs 78 ms of CPU), so the version skips
//! the baseline tier, and with it one of its two compiles. A version with
//! much new code (a new dependency, another compiler setting) still starts
//! on the baseline tier: the optimizer would compile most of it afresh.
//!
//! Only a file the optimizer built a version of before qualifies: an edit
//! loop is per plugin, and another plugin sharing library code is not an
//! edit of it.
//!
//! Bodies are compared by their bytes, but for the indices of the
//! functions they call, as the cache keys them. A body counted as known
//! whose code the cache has since evicted costs a slower build, not a
//! wrong one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// At most this many bodies per generation (8 bytes each, and the set's
/// overhead): the 53 MB sql plugin has ~60,000.
const GENERATION: usize = 1 << 18;

/// Of a component's function bodies, how many (and how many bytes) the
/// optimizer compiled before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    pub bodies: usize,
    pub known_bodies: usize,
    pub bytes: usize,
    pub known_bytes: usize,
}

impl Coverage {
    /// Nearly all compiled before: at most 5 % of the code's bytes new,
    /// and at most 64 KiB of it (Cranelift compiles ~0.5 MB/s of a
    /// plugin's code on one core here, so ~130 ms at worst).
    pub fn warm(&self) -> bool {
        let new = self.bytes - self.known_bytes;
        self.bodies > 0 && new * 20 <= self.bytes && new <= 64 << 10
    }
}

#[derive(Default)]
pub(crate) struct KnownBodies {
    inner: Mutex<Inner>,
}

/// Two generations of body hashes: recording moves a body seen in the old
/// one to the young one, and a full young generation replaces the old.
#[derive(Default)]
struct Inner {
    generations: [HashSet<u64>; 2],
    /// The plugin files a version of was built here.
    files: HashSet<PathBuf>,
}

/// A component's function bodies: each one's hash and length.
pub(crate) struct Bodies(Vec<(u64, usize)>);

impl Bodies {
    /// Every function body of every core module in `component` (nested
    /// ones too). Stops at the first parse error: the compile that follows
    /// reports it.
    pub(crate) fn of(component: &[u8]) -> Bodies {
        Bodies(bodies(component))
    }
}

impl KnownBodies {
    /// Whether a version of the file at `path` was built here (only then
    /// is [`coverage`](Self::coverage) worth its parse).
    pub(crate) fn knows_file(&self, path: &Path) -> bool {
        self.inner.lock().is_ok_and(|i| i.files.contains(path))
    }

    /// Notes `bodies`, of a version of the file at `path`, as compiled.
    pub(crate) fn record(&self, path: &Path, bodies: &Bodies) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.files.insert(path.to_path_buf());
        let g = &mut inner.generations;
        for (hash, _) in &bodies.0 {
            if g[0].len() >= GENERATION {
                g[1] = std::mem::take(&mut g[0]);
            }
            g[0].insert(*hash);
        }
    }

    /// How much of `bodies`' code was compiled before; `None` when no
    /// version of the file at `path` was.
    pub(crate) fn coverage(&self, path: &Path, bodies: &Bodies) -> Option<Coverage> {
        let inner = self.inner.lock().ok()?;
        if !inner.files.contains(path) {
            return None;
        }
        let g = &inner.generations;
        let mut c = Coverage::default();
        for (hash, len) in &bodies.0 {
            c.bodies += 1;
            c.bytes += len;
            if g[0].contains(hash) || g[1].contains(hash) {
                c.known_bodies += 1;
                c.known_bytes += len;
            }
        }
        Some(c)
    }
}

/// [`Bodies::of`].
fn bodies(component: &[u8]) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload {
            Ok(wasmparser::Payload::CodeSectionEntry(body)) => match body_hash(&body) {
                Some(hash) => out.push((hash, body.as_bytes().len())),
                None => break,
            },
            Ok(_) => {}
            Err(_) => break,
        }
    }
    out
}

/// A hash of `body`'s bytes but for the functions it calls or refers to,
/// as Cranelift's incremental cache keys a function's IR: a rebuild that
/// renumbers functions (another crate name, a function added) changes
/// those indices in many callers whose code is found in the cache all
/// the same.
fn body_hash(body: &wasmparser::FunctionBody<'_>) -> Option<u64> {
    use wasmparser::Operator::{Call, RefFunc, ReturnCall};
    let (bytes, base) = (body.as_bytes(), body.range().start);
    let mut ops = body.get_operators_reader().ok()?;
    let mut at = ops.original_position() - base;
    let mut hasher = blake3::Hasher::new();
    hasher.update(bytes.get(..at)?);
    while !ops.eof() {
        let op = ops.read().ok()?;
        let end = ops.original_position() - base;
        match op {
            Call { .. } => hasher.update(b"call"),
            ReturnCall { .. } => hasher.update(b"return_call"),
            RefFunc { .. } => hasher.update(b"ref.func"),
            _ => hasher.update(bytes.get(at..end)?),
        };
        at = end;
    }
    let mut head = [0u8; 8];
    head.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    Some(u64::from_le_bytes(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one function per entry of `consts` (below 64),
    /// each returning its constant.
    fn module(consts: &[u8]) -> Vec<u8> {
        fn section(m: &mut Vec<u8>, id: u8, body: &[u8]) {
            m.push(id);
            let mut len = body.len();
            while len >= 0x80 {
                m.push(0x80 | (len & 0x7f) as u8);
                len >>= 7;
            }
            m.push(len as u8);
            m.extend_from_slice(body);
        }
        let n = consts.len() as u8;
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        section(&mut m, 1, &[1, 0x60, 0, 1, 0x7f]); // type 0: [] -> [i32]
        let mut funcs = vec![n];
        funcs.extend(std::iter::repeat_n(0, consts.len()));
        section(&mut m, 3, &funcs);
        let mut code = vec![n];
        for c in consts {
            code.extend([4, 0, 0x41, c & 0x3f, 0x0b]);
        }
        section(&mut m, 10, &code);
        m
    }

    #[test]
    fn a_version_differing_in_one_function_of_many_is_warm_and_a_new_one_is_not() {
        let (known, file) = (KnownBodies::default(), Path::new("/p/plugin.wasm"));
        let first: Vec<u8> = (0..40).collect();
        known.record(file, &Bodies::of(&module(&first)));

        let mut edited = first.clone();
        edited[7] = 63;
        let c = known.coverage(file, &Bodies::of(&module(&edited))).unwrap();
        assert_eq!((c.bodies, c.known_bodies), (40, 39));
        assert!(c.warm(), "{c:?}");

        let rewritten: Vec<u8> = (0..40).map(|i| 62 - i % 20).collect();
        let c = known
            .coverage(file, &Bodies::of(&module(&rewritten)))
            .unwrap();
        assert_eq!(c.known_bodies, 0);
        assert!(!c.warm(), "{c:?}");
    }

    #[test]
    fn the_same_code_in_another_file_is_not_an_edit_of_it() {
        let known = KnownBodies::default();
        let code = module(&[1, 2, 3]);
        assert_eq!(
            known.coverage(Path::new("/a.wasm"), &Bodies::of(&code)),
            None
        );
        known.record(Path::new("/a.wasm"), &Bodies::of(&code));
        assert_eq!(
            known.coverage(Path::new("/b.wasm"), &Bodies::of(&code)),
            None
        );
        assert!(known
            .coverage(Path::new("/a.wasm"), &Bodies::of(&code))
            .unwrap()
            .warm());
    }

    #[test]
    fn bytes_that_are_not_wasm_cover_nothing() {
        let known = KnownBodies::default();
        known.record(Path::new("/a.wasm"), &Bodies::of(b"not wasm at all"));
        let c = known
            .coverage(Path::new("/a.wasm"), &Bodies::of(b"nor this"))
            .unwrap();
        assert_eq!(c, Coverage::default());
        assert!(!c.warm());
    }
}
