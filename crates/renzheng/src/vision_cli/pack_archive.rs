//! A model pack as one file: what `renzheng models export` writes and `renzheng models
//! import` reads, so that a node that cannot reach PyPI (air-gapped) gets the very pack
//! another node built.
//!
//! The archive is a gzip-compressed tar (a plain tar is read too) holding one directory,
//! named by the pack id, with every file of the pack — `manifest.json`, the networks, the
//! tool's report and `libonnxruntime.so`, the ONNX Runtime the engine loads from the pack
//! directory — and `SHA256SUMS`, the sha256 of each of them in `sha256sum`'s format (so
//! that an operator can also check an unpacked copy with `sha256sum -c`). Headers are
//! fixed (mode 0644, owner 0, time 0) and gzip's header has no time: exporting the same
//! pack twice gives the same bytes, whose sha256 can be compared across nodes.
//!
//! The reader trusts nothing in the archive. Only regular files directly inside the one
//! directory are accepted (no links, devices, absolute paths, `..` or nested folders, and
//! only plain file names); sizes are capped per file, in total and counted on the
//! decompressed stream itself, so a decompression bomb stops at the cap; the files must be
//! exactly those `SHA256SUMS` lists, each with its hash; and the unpacked directory must
//! then open as a [`ModelPack`], whose own manifest hashes every file again, with nothing
//! beside the pack's files. Files are only ever written into the caller's staging
//! directory, which the caller renames into place once everything has passed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use renzheng_vision::pack::{self, ModelPack, MANIFEST_FILE};

/// The archive's own list of hashes, beside the pack's files in its directory.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// What an archive may hold at most; anything larger is refused before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one file. The largest file of a pack today is about 37 MB (SFace).
    pub max_file_bytes: u64,
    /// Bytes of all the files together, and (plus a little for the tar headers) of the
    /// decompressed stream.
    pub max_total_bytes: u64,
    /// Entries of the archive; a pack has six files.
    pub max_entries: usize,
}

impl Default for Limits {
    /// Far above any pack (about 60 MB today), far below what would fill a disk.
    fn default() -> Self {
        Self {
            max_file_bytes: 1 << 30,
            max_total_bytes: 3 << 30,
            max_entries: 64,
        }
    }
}

/// Room for tar headers, padding and the end-of-archive blocks on top of the files' bytes
/// when capping the decompressed stream: [`Limits::max_entries`] headers of 512 bytes and
/// padding of up to 511 bytes each, and generous slack for long-name records.
const TAR_OVERHEAD_BYTES: u64 = 1 << 20;

/// Longest file or directory name accepted in an archive (a pack id is about 40).
const MAX_NAME_LEN: usize = 128;

/// What [`export`] wrote.
#[derive(Debug)]
pub struct Exported {
    /// Files of the pack in the archive (`SHA256SUMS` not counted).
    pub files: usize,
    /// Size of the archive.
    pub bytes: u64,
    /// sha256 of the archive itself, to compare after carrying it across.
    pub sha256: String,
}

/// Writes the verified `pack` to a new gzip-compressed tar at `out`, refusing to replace
/// an existing file. The archive is written beside `out` under a temporary name and
/// renamed when complete, so an interrupted export never leaves a file that looks whole.
pub fn export(pack: &ModelPack, out: &Path) -> anyhow::Result<Exported> {
    if out.exists() {
        bail!("{} exists: refusing to overwrite it", out.display());
    }
    let file_name = out
        .file_name()
        .with_context(|| format!("{} is not a file name", out.display()))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".partial-{}", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let written = write_archive(pack, &tmp).and_then(|files| {
        // Checked again just before the rename, which would silently replace a file that
        // appeared meanwhile.
        if out.exists() {
            bail!(
                "{} appeared while exporting: not replacing it",
                out.display()
            );
        }
        std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))?;
        Ok(files)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let files = written?;
    Ok(Exported {
        files,
        bytes: std::fs::metadata(out)?.len(),
        sha256: pack::sha256_file(out).with_context(|| format!("hashing {}", out.display()))?,
    })
}

/// The body of [`export`]: every file of the manifest plus the manifest itself, then
/// `SHA256SUMS`. Returns how many pack files were written.
fn write_archive(pack: &ModelPack, tmp: &Path) -> anyhow::Result<usize> {
    let manifest = pack.manifest();
    let top = manifest.pack_id.as_str();
    check_name(top).with_context(|| format!("pack id {top:?} cannot name the archive's folder"))?;
    let mut names: Vec<&str> = manifest.files.keys().map(String::as_str).collect();
    names.push(MANIFEST_FILE);
    names.sort_unstable();

    let file = File::options()
        .write(true)
        .create_new(true)
        .open(tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let gz = GzEncoder::new(BufWriter::new(file), Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut sums = String::new();
    for name in &names {
        let path = pack.path(name);
        // Each file is read whole (one at a time, at most a few tens of MB) and hashed from
        // the bytes that go into the archive, so `SHA256SUMS` describes exactly what was
        // written even if the file changed on disk meanwhile.
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let sha256 = pack::sha256_hex(&bytes);
        if let Some(expected) = manifest.files.get(*name) {
            if &sha256 != expected {
                bail!(
                    "{} changed since the pack was verified (sha256 {sha256}, manifest {expected})",
                    path.display()
                );
            }
        }
        append(&mut tar, top, name, &bytes)?;
        sums.push_str(&format!("{sha256}  {name}\n"));
    }
    append(&mut tar, top, SUMS_FILE, sums.as_bytes())?;
    let gz = tar.into_inner().context("finishing the tar stream")?;
    let buffered = gz.finish().context("finishing the gzip stream")?;
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the archive")?;
    // On the disk before the rename makes it visible: it is usually carried away at once.
    file.sync_all().context("flushing the archive to disk")?;
    Ok(names.len())
}

/// Appends `bytes` as the regular file `<top>/<name>` with fixed metadata.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    top: &str,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    tar.append_data(&mut header, format!("{top}/{name}"), bytes)
        .with_context(|| format!("writing {name} into the archive"))
}

/// Unpacks the archive at `archive` into `staging` (an empty directory the caller created
/// beside the final pack directory), verifies it completely and returns the pack opened
/// there. On error, `staging` may hold part of the files: the caller removes it.
pub fn unpack(archive: &Path, staging: &Path, limits: &Limits) -> anyhow::Result<ModelPack> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut input = BufReader::new(file);
    let gzipped = input
        .fill_buf()
        .with_context(|| format!("reading {}", archive.display()))?
        .starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> = if gzipped {
        Box::new(GzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let capped = Capped {
        inner: stream,
        left: limits.max_total_bytes.saturating_add(TAR_OVERHEAD_BYTES),
    };
    let contents = unpack_tar(capped, staging, limits)
        .with_context(|| format!("refusing {}", archive.display()))?;
    verify(staging, contents).with_context(|| format!("refusing {}", archive.display()))
}

/// What the tar held: its folder's name and the files written to staging.
struct Contents {
    top: String,
    files: Vec<String>,
}

/// Reads every entry, checks its type, path and size, and writes the files into `staging`.
fn unpack_tar<R: Read>(input: R, staging: &Path, limits: &Limits) -> anyhow::Result<Contents> {
    let mut tar = tar::Archive::new(input);
    let mut top: Option<String> = None;
    let mut files = Vec::new();
    let mut total: u64 = 0;
    let mut count = 0usize;
    for entry in tar.entries().context("not a tar archive")? {
        let mut entry = entry.context("the archive is corrupt or truncated")?;
        count += 1;
        if count > limits.max_entries {
            bail!("more than {} entries: not a model pack", limits.max_entries);
        }
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8(raw).map_err(|e| {
            anyhow::anyhow!(
                "a path is not UTF-8 ({:?})",
                String::from_utf8_lossy(e.as_bytes())
            )
        })?;
        let kind = entry.header().entry_type();
        let member = parse_member(&path)?;
        if !(kind.is_file() || kind.is_dir()) {
            let what = if kind.is_symlink() {
                "a symbolic link"
            } else if kind.is_hard_link() {
                "a hard link"
            } else {
                "not a regular file"
            };
            bail!("{path:?} is {what}: only regular files are accepted");
        }
        let dir = match &top {
            Some(t) => t,
            None => top.insert(member.dir.to_string()),
        };
        if member.dir != dir.as_str() {
            bail!("{path:?} is outside the archive's one folder {dir:?}");
        }
        let name = match (kind.is_dir(), member.name) {
            // GNU tar records the folder itself when an unpacked copy is packed again.
            (true, None) => continue,
            (false, Some(name)) => name,
            _ => bail!("{path:?}: a pack has no nested folders"),
        };
        let size = entry.size();
        if size > limits.max_file_bytes {
            bail!(
                "{name} is {size} bytes, over the limit of {} per file",
                limits.max_file_bytes
            );
        }
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            bail!("the files exceed {} bytes in total", limits.max_total_bytes);
        }
        if files.iter().any(|f| f == name) {
            bail!("{name} appears twice");
        }
        let dest = staging.join(name);
        // `create_new`: never follows or replaces anything already in staging.
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .open(&dest)
            .with_context(|| format!("creating {}", dest.display()))?;
        let copied = io::copy(&mut (&mut entry).take(size), &mut out)
            .with_context(|| format!("{name}: the archive is corrupt or truncated"))?;
        if copied != size {
            bail!("{name}: {copied} of {size} bytes: the archive is truncated");
        }
        out.sync_all()
            .with_context(|| format!("writing {}", dest.display()))?;
        files.push(name.to_string());
    }
    // Read to the end, so that gzip checks its length and CRC over the whole stream: a
    // damaged or cut stream is refused even where it spares the files.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).context("the archive is corrupt or truncated")?;
    let top = top.context("the archive is empty")?;
    Ok(Contents { top, files })
}

/// Checks the unpacked files against `SHA256SUMS` and the pack's own manifest.
fn verify(staging: &Path, contents: Contents) -> anyhow::Result<ModelPack> {
    let Contents { top, mut files } = contents;
    let Some(at) = files.iter().position(|f| f == SUMS_FILE) else {
        bail!("no {SUMS_FILE}: not an archive written by `renzheng models export`");
    };
    files.swap_remove(at);
    let sums_path = staging.join(SUMS_FILE);
    let text =
        std::fs::read_to_string(&sums_path).with_context(|| format!("{SUMS_FILE} is not text"))?;
    let sums = parse_sums(&text)?;
    for name in &files {
        if !sums.contains_key(name) {
            bail!("{name} is in the archive but not in {SUMS_FILE}: the archive was modified");
        }
    }
    for (name, expected) in &sums {
        if !files.contains(name) {
            bail!("{name} is listed in {SUMS_FILE} but missing from the archive");
        }
        let actual = pack::sha256_file(&staging.join(name))?;
        if &actual != expected {
            bail!(
                "{name} has sha256 {actual}, {SUMS_FILE} says {expected}: the archive is \
                 corrupt or was modified"
            );
        }
    }
    // The archive's list is not part of the pack.
    std::fs::remove_file(&sums_path)?;
    // The pack's own check: its manifest, every file it names and their hashes.
    let opened = ModelPack::open(staging)
        .map_err(|e| anyhow::anyhow!("the pack fails its own manifest's check: {e}"))?;
    let manifest = opened.manifest();
    for name in &files {
        if name != MANIFEST_FILE && !manifest.files.contains_key(name) {
            bail!("{name} is not a file of pack {}", manifest.pack_id);
        }
    }
    if manifest.pack_id != top {
        bail!(
            "the folder is named {top:?} but holds pack {:?}: the archive was modified",
            manifest.pack_id
        );
    }
    Ok(opened)
}

/// `<dir>/<name>` or (a folder entry) `<dir>/` of an archive.
#[derive(Debug, PartialEq, Eq)]
struct Member<'a> {
    dir: &'a str,
    name: Option<&'a str>,
}

/// Splits and checks an entry's path: one folder and a plain file name, nothing that
/// could point elsewhere once joined to the staging directory.
fn parse_member(path: &str) -> anyhow::Result<Member<'_>> {
    if path.starts_with('/') || path.starts_with('\\') {
        bail!("{path:?} is an absolute path");
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let parts: Vec<&str> = trimmed.split('/').collect();
    if parts.contains(&"..") {
        bail!("{path:?} contains `..` (path traversal)");
    }
    for part in &parts {
        check_name(part).with_context(|| format!("{path:?} is not a pack file's path"))?;
    }
    match parts.as_slice() {
        [dir] if trimmed.len() < path.len() => Ok(Member { dir, name: None }),
        [dir, name] if trimmed.len() == path.len() => Ok(Member {
            dir,
            name: Some(name),
        }),
        _ => bail!("{path:?}: expected <pack id>/<file>"),
    }
}

/// A file or folder name as packs use them: ASCII letters, digits, `.`, `_` and `-`, not
/// starting with `.` (which also rules out `.` and `..`, and hidden files).
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!("bad name {name:?}");
    }
    Ok(())
}

/// Parses `sha256sum` output: `<64 lower-case hex>  <name>` a line, names unique.
fn parse_sums(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut sums = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let bad = || anyhow::anyhow!("{SUMS_FILE} line {}: not `<sha256>  <file>`", i + 1);
        let (hash, name) = line.split_once("  ").ok_or_else(bad)?;
        let hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            return Err(bad());
        }
        check_name(name).with_context(|| format!("{SUMS_FILE} line {}", i + 1))?;
        if name == SUMS_FILE || sums.insert(name.to_string(), hash.to_string()).is_some() {
            bail!("{SUMS_FILE} lists {name} twice or lists itself");
        }
    }
    if sums.is_empty() {
        bail!("{SUMS_FILE} is empty");
    }
    Ok(sums)
}

/// A reader that fails once more than `left` bytes have come through: the decompressed
/// stream is bounded whatever the headers claim, so a small archive cannot expand without
/// end (the tar reader buffers long-name and extension records itself).
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a stream that ends exactly at the cap from a longer one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(
                    "the archive expands beyond the size limit (decompression bomb?)",
                )),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A directory path beside `target` for work that will be renamed onto it.
pub fn sibling(target: &Path, prefix: &str) -> anyhow::Result<PathBuf> {
    let parent = target
        .parent()
        .with_context(|| format!("{} has no parent directory", target.display()))?;
    Ok(parent.join(format!("{prefix}{}", std::process::id())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_are_one_folder_and_a_plain_name() {
        assert_eq!(
            parse_member("sface-x/detector.onnx").unwrap(),
            Member {
                dir: "sface-x",
                name: Some("detector.onnx")
            }
        );
        assert_eq!(
            parse_member("sface-x/").unwrap(),
            Member {
                dir: "sface-x",
                name: None
            }
        );
        for (path, why) in [
            ("/etc/passwd", "absolute"),
            ("sface-x/../evil", "path traversal"),
            ("../evil", "path traversal"),
            ("sface-x/a/b", "expected <pack id>/<file>"),
            ("sface-x", "expected <pack id>/<file>"),
            ("sface-x//a", "not a pack file's path"),
            ("sface-x/./a", "not a pack file's path"),
            ("sface-x/.hidden", "not a pack file's path"),
            ("sface-x/a\\b", "not a pack file's path"),
            ("sface-x/a/", "expected <pack id>/<file>"),
        ] {
            let err = format!("{:#}", parse_member(path).unwrap_err());
            assert!(err.contains(why), "{path}: {err}");
        }
    }

    #[test]
    fn sums_are_strict() {
        let h = "a".repeat(64);
        let ok = parse_sums(&format!("{h}  a.onnx\n{h}  manifest.json\n")).unwrap();
        assert_eq!(ok.len(), 2);
        for bad in [
            String::new(),
            format!("{h} a.onnx\n"),
            format!("{}  a.onnx\n", "A".repeat(64)),
            format!("{}  a.onnx\n", "a".repeat(63)),
            format!("{h}  a.onnx\n{h}  a.onnx\n"),
            format!("{h}  ../a.onnx\n"),
            format!("{h}  {SUMS_FILE}\n"),
        ] {
            assert!(parse_sums(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_cap_stops_a_stream_that_expands_too_far() {
        let data = vec![0u8; 1000];
        let mut exact = Capped {
            inner: &data[..],
            left: 1000,
        };
        assert_eq!(io::copy(&mut exact, &mut io::sink()).unwrap(), 1000);
        let mut over = Capped {
            inner: &data[..],
            left: 999,
        };
        let err = io::copy(&mut over, &mut io::sink()).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
    }

    /// One entry of [`raw_tar`]: path, type, bytes.
    type RawEntry<'a> = (&'a str, tar::EntryType, &'a [u8]);

    /// A tar of `(path, type, bytes)` entries written with raw header names, so that
    /// paths the tar writer itself refuses (`..`, absolute) can be tested.
    fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if kind.is_symlink() {
                h.set_link_name("/etc/passwd").unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn staging(tag: &str) -> tempfile::TempDir {
        let d = tempfile::Builder::new().prefix(tag).tempdir().unwrap();
        std::fs::create_dir(d.path().join("staging")).unwrap();
        d
    }

    #[test]
    fn links_traversal_and_oversize_entries_are_refused_before_writing() {
        let cases: [(&[RawEntry<'_>], &str); 6] = [
            (
                &[("p/../evil", tar::EntryType::Regular, b"x")],
                "path traversal",
            ),
            (
                &[("/tmp/evil", tar::EntryType::Regular, b"x")],
                "absolute path",
            ),
            (&[("p/link", tar::EntryType::Symlink, b"")], "symbolic link"),
            (
                &[("p/dev", tar::EntryType::Char, b"")],
                "not a regular file",
            ),
            (
                &[
                    ("p/a", tar::EntryType::Regular, b"x"),
                    ("q/b", tar::EntryType::Regular, b"x"),
                ],
                "outside the archive's one folder",
            ),
            (
                &[("p/big", tar::EntryType::Regular, &[0u8; 2048])],
                "over the limit",
            ),
        ];
        let limits = Limits {
            max_file_bytes: 1024,
            ..Limits::default()
        };
        for (entries, why) in cases {
            let dir = staging("rz-archive-");
            let st = dir.path().join("staging");
            let err = format!(
                "{:#}",
                unpack_tar(&raw_tar(entries)[..], &st, &limits)
                    .err()
                    .unwrap()
            );
            assert!(err.contains(why), "{why}: {err}");
            assert!(!dir.path().join("evil").exists());
            assert!(!st.join("link").exists() && !st.join("big").exists());
        }
    }

    #[test]
    fn too_many_entries_and_too_many_bytes_are_refused() {
        let dir = staging("rz-archive-");
        let st = dir.path().join("staging");
        let names: Vec<String> = (0..5).map(|i| format!("p/f{i}")).collect();
        let entries: Vec<RawEntry<'_>> = names
            .iter()
            .map(|n| (n.as_str(), tar::EntryType::Regular, &b"0123456789"[..]))
            .collect();
        let tar = raw_tar(&entries);
        let few = Limits {
            max_entries: 4,
            ..Limits::default()
        };
        let err = format!("{:#}", unpack_tar(&tar[..], &st, &few).err().unwrap());
        assert!(err.contains("more than 4 entries"), "{err}");
        let small = Limits {
            max_total_bytes: 35,
            ..Limits::default()
        };
        let st2 = dir.path().join("staging2");
        std::fs::create_dir(&st2).unwrap();
        let err = format!("{:#}", unpack_tar(&tar[..], &st2, &small).err().unwrap());
        assert!(err.contains("in total"), "{err}");
    }
}
