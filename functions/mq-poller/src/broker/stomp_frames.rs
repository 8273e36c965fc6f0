//! The broker's frames, each cut whole from the stream before async-stomp's codec decodes it, so
//! a frame the codec refuses (a header that is not UTF-8, say) is kept as its raw bytes, to be
//! parked and acknowledged, instead of ending the connection and coming back first on every poll.

use async_stomp::client::ClientCodec;
use async_stomp::{FromServer, Message};
use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

pub enum Incoming {
    Frame(Message<FromServer>),
    Undecodable(Undecodable),
}

/// A whole frame the codec refused.
pub struct Undecodable {
    /// The frame as it came, command to NUL.
    pub raw: Bytes,
    /// Its `ack` header, or else its `message-id` (what ACK and NACK name), when readable.
    pub ack_id: Option<String>,
    /// Its `message-id` header as it came (the broker's, unique per message): a redelivery,
    /// which adds headers, is still known by it.
    pub message_id: Option<Vec<u8>>,
    /// Whether the broker marked it redelivered.
    pub redelivered: bool,
    /// Why the codec refused it (names a header, never a value).
    pub reason: String,
}

pub struct FrameCodec {
    inner: ClientCodec,
    /// Frames over this are refused, whole or not (the codec's own bound, async-stomp's default).
    max_frame: usize,
    /// How far into the buffer the search for a body's NUL has got: a frame read in many pieces
    /// is searched once, not again from its start at each piece.
    searched: usize,
}

impl Default for FrameCodec {
    fn default() -> FrameCodec {
        let max_frame = async_stomp::client::DEFAULT_MAX_FRAME_SIZE;
        FrameCodec { inner: ClientCodec::with_max_frame_size(max_frame), max_frame, searched: 0 }
    }
}

impl Decoder for FrameCodec {
    type Item = Incoming;
    type Error = anyhow::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Incoming>, anyhow::Error> {
        // Line ends before a frame are heart-beats.
        let beats = src.iter().take_while(|b| **b == b'\n' || **b == b'\r').count();
        if beats > 0 {
            src.advance(beats);
            self.searched = 0;
        }
        let length = match frame_length(src, &mut self.searched) {
            Cut::Whole(length) => length,
            // Not whole yet: wait for the rest, within the bound. The codec is not asked: it
            // would refuse a frame it cannot parse before the frame is whole, and end the stream.
            Cut::Partial if src.len() > self.max_frame => anyhow::bail!("a frame over {} bytes", self.max_frame),
            Cut::Partial => return Ok(None),
            // Where this frame ends, and the next begins, cannot be known: the stream ends, loudly,
            // as the codec ended it (waiting for bytes that never come would stall the poll).
            Cut::Miscounted => anyhow::bail!("a frame whose content-length does not end at its NUL"),
        };
        self.searched = 0;
        // Cut without copying: the codec sees exactly one frame, and a refused one is kept as it
        // came. Refusals are found before the codec runs, since it consumes what it refuses.
        let mut frame = src.split_to(length);
        if let Some(reason) = refusal(&frame) {
            // A copy: a slice would keep the whole read buffer alive with it.
            return Ok(Some(Incoming::Undecodable(undecodable(Bytes::copy_from_slice(&frame), reason))));
        }
        match self.inner.decode(&mut frame)? {
            Some(message) => Ok(Some(Incoming::Frame(message))),
            None => Err(anyhow::anyhow!("a whole frame that the STOMP codec reads as incomplete")),
        }
    }
}

/// Why the codec would refuse this MESSAGE frame, if it would: a header line that is not
/// `name:value` or holds a lone carriage return, a name or a value that is not UTF-8 (unescaping
/// keeps that as it is: escapes are ASCII), or one of the headers every MESSAGE has missing.
/// Other frames are the codec's to read.
fn refusal(frame: &[u8]) -> Option<String> {
    let command = frame.split(|b| *b == b'\n').next().unwrap_or_default();
    let command = command.strip_suffix(b"\r").unwrap_or(command);
    if command != b"MESSAGE" && command != b"message" {
        return None;
    }
    let (lines, _) = header_lines(frame)?;
    let mut names = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(colon) = line.iter().position(|b| *b == b':').filter(|at| *at > 0) else {
            return Some(format!("header line {} is not name:value", index + 1));
        };
        if line.contains(&b'\r') {
            return Some(format!("header line {} holds a carriage return", index + 1));
        }
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            return Some(format!("the name of header line {} is not UTF-8", index + 1));
        };
        if std::str::from_utf8(&line[colon + 1..]).is_err() {
            let shown: String = name.chars().take(64).collect();
            return Some(format!("the value of header '{shown}' is not UTF-8"));
        }
        names.push(name);
    }
    ["destination", "message-id", "subscription"]
        .iter()
        .find(|needed| !names.contains(needed))
        .map(|missing| format!("no {missing} header"))
}

fn undecodable(raw: Bytes, reason: String) -> Undecodable {
    let text = |name: &[u8]| raw_header(&raw, name).and_then(|value| String::from_utf8(unescape(value)).ok());
    let ack_id = text(b"ack").or_else(|| text(b"message-id"));
    let redelivered = text(b"redelivered").is_some_and(|v| v == "true");
    let message_id = raw_header(&raw, b"message-id").map(<[u8]>::to_vec);
    Undecodable { ack_id, message_id, redelivered, reason, raw }
}

/// A header value unescaped as STOMP 1.2 and the codec do (`\c` is a colon: ActiveMQ writes every
/// message id as `ID\c...`); an unknown escape is kept as it is, as the codec keeps it.
fn unescape(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(b'c') => out.push(b':'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'\\') => out.push(b'\\'),
            Some(other) => out.extend_from_slice(&[b'\\', other]),
            None => out.push(b'\\'),
        }
    }
    out
}

/// The header lines of a frame (after its command), up to the empty line that ends them, and the
/// offset of the body; `None` while the headers are not all there.
fn header_lines(frame: &[u8]) -> Option<(Vec<&[u8]>, usize)> {
    let mut lines = Vec::new();
    let mut at = 0;
    let mut command = true;
    loop {
        let end = at + frame[at..].iter().position(|b| *b == b'\n')?;
        let line = &frame[at..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at = end + 1;
        if std::mem::take(&mut command) {
            continue;
        }
        if line.is_empty() {
            return Some((lines, at));
        }
        lines.push(line);
    }
}

/// A header's value as it came (the first of that name, as STOMP reads headers), still escaped.
fn raw_header<'f>(frame: &'f [u8], name: &[u8]) -> Option<&'f [u8]> {
    let (lines, _) = header_lines(frame)?;
    lines.into_iter().find_map(|line| line.strip_prefix(name)?.strip_prefix(b":"))
}

/// Where the frame at the start of the buffer ends.
#[derive(Debug, PartialEq, Eq)]
enum Cut {
    /// Its length, its NUL included.
    Whole(usize),
    Partial,
    /// The byte after its counted body is not the NUL.
    Miscounted,
}

/// Where the frame at the start of `frame` ends, as the codec reads it: the body is
/// `content-length` bytes when the first header of that name is a number, else up to the first
/// NUL (searched from `searched`, which it advances).
fn frame_length(frame: &[u8], searched: &mut usize) -> Cut {
    let Some((lines, body)) = header_lines(frame) else { return Cut::Partial };
    let counted = lines
        .iter()
        .find_map(|line| line.strip_prefix(b"content-length:"))
        .and_then(|value| std::str::from_utf8(value).ok()?.parse::<u32>().ok());
    let end = match counted {
        Some(length) => body + length as usize,
        None => {
            let from = (*searched).max(body).min(frame.len());
            match frame[from..].iter().position(|b| *b == 0) {
                Some(at) => from + at,
                None => {
                    *searched = frame.len();
                    return Cut::Partial;
                }
            }
        }
    };
    match frame.get(end) {
        Some(0) => Cut::Whole(end + 1),
        Some(_) => Cut::Miscounted,
        None => Cut::Partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Vec<Incoming> {
        let mut codec = FrameCodec::default();
        let mut buffer = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(item) = codec.decode(&mut buffer).expect("decodes") {
            out.push(item);
        }
        assert!(buffer.is_empty(), "{} bytes left", buffer.len());
        out
    }

    fn message(ack: &str, extra: &[u8], body: &[u8]) -> Vec<u8> {
        let mut frame = format!(
            "MESSAGE\ndestination:/queue/q\nsubscription:s\nmessage-id:ID:{ack}\nack:{ack}\ncontent-length:{}\n",
            body.len()
        )
        .into_bytes();
        frame.extend_from_slice(extra);
        frame.extend_from_slice(b"\n");
        frame.extend_from_slice(body);
        frame.push(0);
        frame
    }

    #[test]
    fn a_frame_with_a_header_that_is_not_utf8_is_kept_whole_and_the_next_is_read() {
        let poison = message("2", b"x-name:caf\xe9\n", b"body\0with a NUL");
        let stream =
            [message("1", b"", b"first"), b"\n".to_vec(), poison.clone(), message("3", b"", b"third")].concat();
        let items = decode_all(&stream);
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[0], Incoming::Frame(_)));
        let Incoming::Undecodable(refused) = &items[1] else { panic!("the second is refused") };
        assert_eq!(&refused.raw[..], &poison[..], "byte for byte, command to NUL");
        assert_eq!(refused.ack_id.as_deref(), Some("2"));
        assert!(refused.reason.contains("x-name") && !refused.reason.contains("caf"), "{}", refused.reason);
        let Incoming::Frame(third) = &items[2] else { panic!("the third is read") };
        assert!(matches!(&third.content, FromServer::Message { body: Some(b), .. } if b == b"third"));
    }

    #[test]
    fn a_refused_frame_read_in_pieces_is_still_kept_and_its_escaped_ids_read() {
        // As ActiveMQ writes ids (`:` escaped as `\c`), and a header line that is not name:value,
        // which the codec would refuse before the frame was whole.
        let poison = b"MESSAGE\ndestination:/queue/q\nsubscription:s\nmessage-id:ID\\chost-1\nack:ID\\chost-1\nredelivered:true\nno colon here\ncontent-length:4\n\nbody\0".to_vec();
        let mut codec = FrameCodec::default();
        let mut buffer = BytesMut::new();
        let mut items = Vec::new();
        for byte in [poison.clone(), message("2", b"", b"next")].concat() {
            buffer.extend_from_slice(&[byte]);
            if let Some(item) = codec.decode(&mut buffer).expect("never ends the stream") {
                items.push(item);
            }
        }
        let [Incoming::Undecodable(refused), Incoming::Frame(_)] = &items[..] else {
            panic!("a refusal, then a frame")
        };
        assert_eq!(&refused.raw[..], &poison[..]);
        assert_eq!(refused.ack_id.as_deref(), Some("ID:host-1"), "unescaped as the ACK must name it");
        assert_eq!(refused.message_id.as_deref(), Some(&b"ID\\chost-1"[..]));
        assert!(refused.redelivered);
        assert!(refused.reason.contains("line 6"), "{}", refused.reason);
        let lone_cr = message("3", b"x-a:one\rtwo\n", b"b");
        assert!(matches!(&decode_all(&lone_cr)[..], [Incoming::Undecodable(_)]));
    }

    #[test]
    fn partial_frames_wait_for_the_rest() {
        let whole = message("1", b"", &[7u8; 1000]);
        let mut codec = FrameCodec::default();
        let mut buffer = BytesMut::new();
        for (i, byte) in whole.iter().enumerate() {
            buffer.extend_from_slice(&[*byte]);
            let item = codec.decode(&mut buffer).expect("decodes");
            assert_eq!(item.is_some(), i == whole.len() - 1, "at byte {i}");
        }
        let miscounted =
            b"MESSAGE\ndestination:/queue/q\nsubscription:s\nmessage-id:ID:9\ncontent-length:2\n\nabc\0".to_vec();
        let mut buffer = BytesMut::from(&miscounted[..]);
        assert!(FrameCodec::default().decode(&mut buffer).is_err(), "ends loudly, never waits for more");
        let uncounted = b"MESSAGE\ndestination:/queue/q\nsubscription:s\nmessage-id:ID:9\n\nno length\0".to_vec();
        assert!(matches!(&decode_all(&uncounted)[..], [Incoming::Frame(_)]));
    }
}
