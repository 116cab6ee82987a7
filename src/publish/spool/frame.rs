//! The frame format of a segment file, and the scan that validates a segment on open.
//!
//! A frame is `u32 LE payload length | u32 LE crc32 of payload | payload`, and the payload is
//! `u64 LE seq` followed by the postcard encoding of the [`Entry`]. The checksum covers the seq.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use super::{io_err, Entry, SpoolError};

/// Bytes before the payload: length and checksum.
pub(super) const HEADER: usize = 8;
/// Bytes of the seq at the start of the payload.
const SEQ: usize = 8;

/// A frame encoded outside the spool's lock, waiting for its seq.
pub(super) struct Pending {
    bytes: Vec<u8>,
    /// Checksum of the postcard body alone; the seq is folded in by [`Pending::seal`].
    body_crc: crc32fast::Hasher,
}

/// Encodes `entry` into a frame whose seq (and so whose checksum) is filled in later.
pub(super) fn encode(entry: &Entry) -> Result<Pending, SpoolError> {
    let bytes = postcard::to_extend(entry, vec![0u8; HEADER + SEQ]).map_err(|e| SpoolError::Encode { reason: e.to_string() })?;
    let payload = bytes.len() - HEADER;
    let len = u32::try_from(payload)
        .map_err(|_| SpoolError::Encode { reason: format!("an entry of {payload} bytes does not fit a frame") })?;
    let mut bytes = bytes;
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    let mut body_crc = crc32fast::Hasher::new();
    body_crc.update(&bytes[HEADER + SEQ..]);
    Ok(Pending { bytes, body_crc })
}

impl Pending {
    /// Bytes the frame takes on disk.
    pub(super) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Stamps `seq` and the checksum; returns the bytes to write.
    pub(super) fn seal(&mut self, seq: u64) -> &[u8] {
        self.bytes[HEADER..HEADER + SEQ].copy_from_slice(&seq.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&seq.to_le_bytes());
        crc.combine(&self.body_crc);
        self.bytes[4..HEADER].copy_from_slice(&crc.finalize().to_le_bytes());
        &self.bytes
    }
}

/// Checks a payload against its checksum and decodes it.
fn decode_payload(payload: &[u8], crc: u32) -> Result<(u64, Entry), String> {
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let (seq, body) = payload.split_at_checked(SEQ).ok_or("payload shorter than its seq")?;
    let seq = u64::from_le_bytes(seq.try_into().map_err(|_| "payload shorter than its seq")?);
    let (entry, rest) = postcard::take_from_bytes::<Entry>(body).map_err(|e| format!("undecodable entry: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} stray bytes after the entry", rest.len()));
    }
    Ok((seq, entry))
}

/// Decodes one whole frame (header included), as read back for `pending` or eviction.
pub(super) fn decode(frame: &[u8]) -> Result<(u64, Entry), String> {
    let (header, payload) = frame.split_at_checked(HEADER).ok_or("frame shorter than its header")?;
    let (len, crc) = parse_header(header);
    if len as usize != payload.len() {
        return Err(format!("frame length {} but {} payload bytes", len, payload.len()));
    }
    decode_payload(payload, crc)
}

fn parse_header(h: &[u8]) -> (u32, u32) {
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    (word(0), word(4))
}

/// One valid frame found by [`scan`].
#[derive(Debug)]
pub(super) struct Found {
    pub seq: u64,
    pub offset: u64,
    pub len: u64,
    pub spooled_at_ms: u64,
}

/// What [`scan`] found in one segment.
#[derive(Debug)]
pub(super) struct Scanned {
    pub frames: Vec<Found>,
    /// Bytes of valid frames from the start of the file.
    pub valid_len: u64,
    pub file_len: u64,
    /// Why the frame at `valid_len` is bad, when the file does not end there cleanly.
    pub torn: Option<String>,
}

/// Reads a segment frame by frame until its end or its first bad frame: short (torn), with a bad
/// checksum, undecodable, or with a seq not above `after` (the last seq seen before this file).
pub(super) fn scan(path: &Path, after: Option<u64>) -> Result<Scanned, SpoolError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut frames = Vec::new();
    let mut offset = 0u64;
    let mut last = after;
    let mut payload = Vec::new();
    let torn = loop {
        let left = file_len - offset;
        if left == 0 {
            break None;
        }
        if left < HEADER as u64 {
            break Some(format!("{left} bytes left, less than a frame header"));
        }
        let mut header = [0u8; HEADER];
        read(&mut reader, &mut header, path)?;
        let (len, crc) = parse_header(&header);
        if u64::from(len) > left - HEADER as u64 {
            break Some(format!("frame of {len} bytes runs past the end of the file"));
        }
        payload.resize(len as usize, 0);
        read(&mut reader, &mut payload, path)?;
        let (seq, entry) = match decode_payload(&payload, crc) {
            Ok(decoded) => decoded,
            Err(reason) => break Some(reason),
        };
        if let Some(prev) = last.filter(|prev| seq <= *prev) {
            break Some(format!("seq {seq} does not follow seq {prev}"));
        }
        last = Some(seq);
        let frame_len = HEADER as u64 + u64::from(len);
        frames.push(Found { seq, offset, len: frame_len, spooled_at_ms: entry.spooled_at_ms });
        offset += frame_len;
    };
    Ok(Scanned { frames, valid_len: offset, file_len, torn })
}

fn read(reader: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<(), SpoolError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        // The file shrank under us: nothing else writes a spool directory.
        ErrorKind::UnexpectedEof => io_err(path, std::io::Error::new(e.kind(), "segment shrank while being read")),
        _ => io_err(path, e),
    })
}
