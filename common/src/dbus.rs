//! A small D-Bus client for one peer: the systemd user manager on its private socket
//! (`$XDG_RUNTIME_DIR/systemd/private`, where `systemctl --user` itself connects).
//!
//! Only what reading unit states needs: the EXTERNAL authentication, method calls
//! with string and string-array arguments, and replies of any signature. Calls are
//! pipelined: a batch is written at once and its replies read after, so a thousand
//! property reads cost a few round trips instead of a thousand.
//!
//! Why not a crate: `zbus` (the well-kept pure-Rust one) panics on the manager's
//! replies on this socket (their sender is the well-known name
//! `org.freedesktop.systemd1`, which it requires to be a unique name), and the `dbus`
//! crate links libdbus, which the restore kit may not need. The wire format is the
//! D-Bus specification's, little- or big-endian.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why the bus could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    #[error("the D-Bus socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("the D-Bus peer refused the authentication: {0}")]
    Auth(String),
    #[error("a D-Bus message is malformed: {0}")]
    Malformed(&'static str),
    /// The peer answered the call with an error.
    #[error("{name}: {message}")]
    Remote { name: String, message: String },
}

/// A value of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    /// A string, an object path or a signature.
    Str(String),
    Array(Vec<Value>),
    /// A struct or a dict entry.
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    /// The value inside a variant (any depth), or this one.
    pub fn unwrapped(&self) -> &Value {
        match self {
            Value::Variant(inner) => inner.unwrapped(),
            other => other,
        }
    }
}

/// An argument of a call.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Str(&'a str),
    StrArray(&'a [&'a str]),
}

impl Arg<'_> {
    fn signature(&self) -> &'static str {
        match self {
            Arg::Str(_) => "s",
            Arg::StrArray(_) => "as",
        }
    }
}

/// One method call.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub path: String,
    pub interface: &'a str,
    pub member: &'a str,
    pub args: Vec<Arg<'a>>,
}

/// Calls written before their replies are read.
const BATCH: usize = 256;

/// A connection to one peer.
pub struct Bus {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    serial: u32,
    timeout: Duration,
    /// Whether the peer sent anything since the authentication.
    answered: bool,
    /// The pings sent while the first answer was awaited.
    nudges: u32,
}

/// How long the first answer is awaited before the peer is nudged (see
/// [`Bus::await_first_answer`]).
const NUDGE_AFTER: Duration = Duration::from_millis(25);

impl Bus {
    /// Connects to the socket at `path` and authenticates as this process's user;
    /// every read and write after gives up after `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Bus, BusError> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut bus = Bus {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            serial: 0,
            timeout,
            answered: false,
            nudges: 0,
        };
        let uid = crate::sys::euid().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        // `BEGIN` goes with `AUTH`, as sd-bus's own clients send it: the first call then
        // reaches the peer after the authentication is over, in a read of its own.
        bus.writer.write_all(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes())?;
        let mut line = String::new();
        bus.reader.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(BusError::Auth(line.trim().to_owned()));
        }
        Ok(bus)
    }

    /// Waits until the peer's first message after the authentication begins to arrive.
    /// systemd (sd-bus, as a server) can keep a message that came in the same read as
    /// the authentication's `BEGIN` unprocessed until more bytes arrive: then no answer
    /// comes, ever. [`Bus::connect`] sends `BEGIN` before the `OK` so that this does not
    /// happen (`BEGIN` after `OK`, then a call at once, stalled nearly every connection);
    /// should it happen anyway, while nothing arrives a `Ping` is sent every
    /// [`NUDGE_AFTER`] (its answer is ignored), up to the timeout. Nothing is consumed
    /// here.
    fn await_first_answer(&mut self) -> Result<(), BusError> {
        let deadline = std::time::Instant::now() + self.timeout;
        self.reader.get_ref().set_read_timeout(Some(NUDGE_AFTER))?;
        let arrived = loop {
            match self.reader.fill_buf() {
                Ok([]) => break Err(BusError::Malformed("the peer closed the connection")),
                Ok(_) => break Ok(()),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if std::time::Instant::now() >= deadline {
                        break Err(BusError::Io(e));
                    }
                    self.serial = self.serial.checked_add(1).ok_or(BusError::Malformed("no serial left"))?;
                    let ping = Call {
                        path: "/org/freedesktop/systemd1".into(),
                        interface: "org.freedesktop.DBus.Peer",
                        member: "Ping",
                        args: Vec::new(),
                    };
                    self.writer.write_all(&method_call(self.serial, &ping))?;
                    self.nudges += 1;
                }
                Err(e) => break Err(BusError::Io(e)),
            }
        };
        self.reader.get_ref().set_read_timeout(Some(self.timeout))?;
        self.answered = arrived.is_ok();
        arrived
    }

    /// How many times the peer was nudged before its first answer arrived (see
    /// [`Bus::await_first_answer`]): each one cost [`NUDGE_AFTER`].
    pub fn nudges(&self) -> u32 {
        self.nudges
    }

    /// Makes every call and returns each one's reply (its values, or the peer's
    /// error), in the order of `calls`.
    pub fn call_all(&mut self, calls: &[Call<'_>]) -> Result<Vec<Result<Vec<Value>, BusError>>, BusError> {
        let mut replies = Vec::with_capacity(calls.len());
        for batch in calls.chunks(BATCH) {
            let first = self.serial.saturating_add(1);
            let mut out = Vec::new();
            for call in batch {
                self.serial = self.serial.checked_add(1).ok_or(BusError::Malformed("no serial left"))?;
                out.extend(method_call(self.serial, call));
            }
            self.writer.write_all(&out)?;
            let mut answers: Vec<Option<Result<Vec<Value>, BusError>>> = (0..batch.len()).map(|_| None).collect();
            let mut pending = batch.len();
            while pending > 0 {
                if !self.answered {
                    self.await_first_answer()?;
                }
                let message = read_message(&mut self.reader)?;
                let Some(to) = message.reply_serial else { continue }; // a signal: not asked for
                let Some(slot) = usize::try_from(to.wrapping_sub(first)).ok().and_then(|i| answers.get_mut(i)) else {
                    continue;
                };
                if slot.is_none() {
                    pending -= 1;
                }
                *slot = Some(message.into_reply());
            }
            replies.extend(answers.into_iter().map(|a| a.unwrap_or(Err(BusError::Malformed("a reply is missing")))));
        }
        Ok(replies)
    }
}

/// D-Bus message types.
const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

/// A message read from the peer.
struct Message {
    kind: u8,
    reply_serial: Option<u32>,
    error_name: Option<String>,
    body: Vec<Value>,
}

impl Message {
    fn into_reply(self) -> Result<Vec<Value>, BusError> {
        match self.kind {
            METHOD_RETURN => Ok(self.body),
            ERROR => {
                let message = match self.body.first() {
                    Some(Value::Str(text)) => text.clone(),
                    _ => String::new(),
                };
                Err(BusError::Remote { name: self.error_name.unwrap_or_default(), message })
            }
            _ => Err(BusError::Malformed("a reply that is neither a return nor an error")),
        }
    }
}

/// Marshals values, aligned from the start of the buffer (a message's header, or its
/// body, which starts 8-aligned).
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }
    fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }
    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    fn signature(&mut self, s: &str) {
        self.byte(u8::try_from(s.len()).unwrap_or(u8::MAX));
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// An array: its length, then what `items` writes (aligned to `align`).
    fn array(&mut self, align: usize, items: impl FnOnce(&mut Writer)) {
        self.u32(0);
        let at = self.buf.len() - 4;
        self.pad(align);
        let start = self.buf.len();
        items(self);
        let len = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    fn arg(&mut self, arg: &Arg<'_>) {
        match arg {
            Arg::Str(s) => self.str(s),
            Arg::StrArray(items) => self.array(4, |w| items.iter().for_each(|s| w.str(s))),
        }
    }
}

/// The bytes of a method call (little-endian).
fn method_call(serial: u32, call: &Call<'_>) -> Vec<u8> {
    let mut body = Writer::default();
    call.args.iter().for_each(|a| body.arg(a));
    let signature: String = call.args.iter().map(Arg::signature).collect();
    let mut header = Writer::default();
    header.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    header.u32(u32::try_from(body.buf.len()).unwrap_or(u32::MAX));
    header.u32(serial);
    header.array(8, |w| {
        let mut field = |code: u8, sig: &str, value: &str| {
            w.pad(8);
            w.byte(code);
            w.signature(sig);
            if sig == "g" { w.signature(value) } else { w.str(value) }
        };
        field(1, "o", &call.path);
        field(2, "s", call.interface);
        field(3, "s", call.member);
        if !signature.is_empty() {
            field(8, "g", &signature);
        }
    });
    header.pad(8);
    header.buf.extend_from_slice(&body.buf);
    header.buf
}

/// Reads one whole message.
fn read_message(reader: &mut impl Read) -> Result<Message, BusError> {
    let mut fixed = [0u8; 16];
    reader.read_exact(&mut fixed)?;
    let big = match fixed[0] {
        b'l' => false,
        b'B' => true,
        _ => return Err(BusError::Malformed("unknown byte order")),
    };
    let word = |at: usize| {
        let bytes = [fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]];
        if big { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) }
    };
    let (body_len, fields_len) = (word(4) as usize, word(12) as usize);
    if body_len > 1 << 27 || fields_len > 1 << 26 {
        return Err(BusError::Malformed("a message longer than D-Bus allows"));
    }
    let header_len = (16 + fields_len).next_multiple_of(8);
    let mut rest = vec![0u8; header_len - 16 + body_len];
    reader.read_exact(&mut rest)?;
    let mut all = fixed.to_vec();
    all.extend_from_slice(&rest);

    let mut fields = Reader { buf: &all[..16 + fields_len], pos: 16, big };
    let (mut reply_serial, mut error_name, mut signature) = (None, None, String::new());
    while fields.pos < fields.buf.len() {
        fields.align(8)?;
        let code = fields.byte()?;
        match (code, fields.value(b"v")?.unwrapped()) {
            (4, Value::Str(name)) => error_name = Some(name.clone()),
            (5, Value::UInt(serial)) => reply_serial = u32::try_from(*serial).ok(),
            (8, Value::Str(sig)) => signature = sig.clone(),
            _ => {}
        }
    }
    let mut body = Reader { buf: &all[header_len..], pos: 0, big };
    let mut values = Vec::new();
    let sig = signature.as_bytes();
    let mut at = 0;
    while at < sig.len() {
        let end = type_end(sig, at)?;
        values.push(body.value(&sig[at..end])?);
        at = end;
    }
    Ok(Message { kind: fixed[1], reply_serial, error_name, body: values })
}

/// Where the single complete type starting at `sig[at]` ends.
fn type_end(sig: &[u8], at: usize) -> Result<usize, BusError> {
    let bad = BusError::Malformed("a bad signature");
    match sig.get(at) {
        Some(b'a') => type_end(sig, at + 1),
        Some(open @ (b'(' | b'{')) => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut i = at + 1;
            while sig.get(i) != Some(&close) {
                if i >= sig.len() {
                    return Err(bad);
                }
                i = type_end(sig, i)?;
            }
            Ok(i + 1)
        }
        Some(b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b'h' | b's' | b'o' | b'g' | b'v') => {
            Ok(at + 1)
        }
        _ => Err(bad),
    }
}

/// The alignment of the type starting with `code`.
fn alignment(code: u8) -> usize {
    match code {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b'h' | b's' | b'o' | b'a' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// Unmarshals values; positions are offsets from the buffer's start, which is where
/// alignment counts from.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], BusError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        let end = end.ok_or(BusError::Malformed("a value runs past its message"))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
    fn align(&mut self, n: usize) -> Result<(), BusError> {
        let to = self.pos.next_multiple_of(n);
        self.take(to - self.pos).map(|_| ())
    }
    fn byte(&mut self) -> Result<u8, BusError> {
        Ok(self.take(1)?[0])
    }
    fn uint(&mut self, n: usize) -> Result<u64, BusError> {
        self.align(n)?;
        let big = self.big;
        let bytes = self.take(n)?;
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        Ok(if big { bytes.iter().fold(0, fold) } else { bytes.iter().rev().fold(0, fold) })
    }
    fn text(&mut self, len: usize) -> Result<String, BusError> {
        let bytes = self.take(len + 1)?;
        String::from_utf8(bytes[..len].to_vec()).map_err(|_| BusError::Malformed("a string that is not UTF-8"))
    }

    /// The value of the single complete type `sig`.
    fn value(&mut self, sig: &[u8]) -> Result<Value, BusError> {
        let code = *sig.first().ok_or(BusError::Malformed("an empty signature"))?;
        Ok(match code {
            b'y' => Value::Byte(self.byte()?),
            b'b' => Value::Bool(self.uint(4)? != 0),
            b'n' => Value::Int(i64::from(self.uint(2)? as u16 as i16)),
            b'q' => Value::UInt(self.uint(2)?),
            b'i' => Value::Int(i64::from(self.uint(4)? as u32 as i32)),
            b'u' | b'h' => Value::UInt(self.uint(4)?),
            b'x' => Value::Int(self.uint(8)? as i64),
            b't' => Value::UInt(self.uint(8)?),
            b'd' => Value::Double(f64::from_bits(self.uint(8)?)),
            b's' | b'o' => {
                let len = usize::try_from(self.uint(4)?).unwrap_or(usize::MAX);
                Value::Str(self.text(len)?)
            }
            b'g' => {
                let len = usize::from(self.byte()?);
                Value::Str(self.text(len)?)
            }
            b'v' => {
                let len = usize::from(self.byte()?);
                let inner = self.text(len)?;
                let inner = inner.as_bytes();
                if type_end(inner, 0)? != inner.len() {
                    return Err(BusError::Malformed("a variant of more than one type"));
                }
                Value::Variant(Box::new(self.value(inner)?))
            }
            b'a' => {
                let len = usize::try_from(self.uint(4)?).unwrap_or(usize::MAX);
                let element = &sig[1..type_end(sig, 1)?];
                self.align(alignment(element[0]))?;
                let end = self.pos.checked_add(len).filter(|end| *end <= self.buf.len());
                let end = end.ok_or(BusError::Malformed("an array runs past its message"))?;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(element)?);
                }
                Value::Array(items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let inner = &sig[1..type_end(sig, 0)? - 1];
                let mut fields = Vec::new();
                let mut at = 0;
                while at < inner.len() {
                    let end = type_end(inner, at)?;
                    fields.push(self.value(&inner[at..end])?);
                    at = end;
                }
                Value::Struct(fields)
            }
            _ => return Err(BusError::Malformed("an unknown type")),
        })
    }
}

/// The object path of a systemd unit, from its name (systemd's bus label escaping:
/// every byte but ASCII letters and digits as `_` and two hex digits).
pub fn unit_path(unit: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    if unit.is_empty() {
        path.push('_');
    }
    for b in unit.bytes() {
        if b.is_ascii_alphanumeric() {
            path.push(char::from(b));
        } else {
            path.push_str(&format!("_{b:02x}"));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_become_object_paths_as_systemd_escapes_them() {
        assert_eq!(unit_path("pi-web.service"), "/org/freedesktop/systemd1/unit/pi_2dweb_2eservice");
        assert_eq!(unit_path("a@b_c.timer"), "/org/freedesktop/systemd1/unit/a_40b_5fc_2etimer");
    }

    #[test]
    fn a_call_reads_back_as_the_message_it_is() -> Result<(), BusError> {
        let patterns = ["*.service", "*.timer"];
        let call = Call {
            path: "/org/freedesktop/systemd1".into(),
            interface: "org.freedesktop.systemd1.Manager",
            member: "ListUnitsByPatterns",
            args: vec![Arg::StrArray(&[]), Arg::StrArray(&patterns)],
        };
        let bytes = method_call(7, &call);
        let message = read_message(&mut bytes.as_slice())?;
        assert_eq!(message.kind, METHOD_CALL);
        let strs = |items: &[&str]| Value::Array(items.iter().map(|s| Value::Str((*s).to_owned())).collect());
        assert_eq!(message.body, vec![strs(&[]), strs(&patterns)]);
        Ok(())
    }

    #[test]
    fn nested_values_are_read_at_their_alignment() -> Result<(), BusError> {
        // a(sb) in a variant, then t: [("/e", true)], 5
        let mut w = Writer::default();
        w.signature("a(sb)");
        w.array(8, |w| {
            w.pad(8);
            w.str("/e");
            w.u32(1);
        });
        w.pad(8);
        w.buf.extend_from_slice(&5u64.to_le_bytes());
        let mut r = Reader { buf: &w.buf, pos: 0, big: false };
        let files = r.value(b"v")?;
        assert_eq!(
            files.unwrapped(),
            &Value::Array(vec![Value::Struct(vec![Value::Str("/e".into()), Value::Bool(true)])])
        );
        assert_eq!(r.value(b"t")?, Value::UInt(5));
        assert!(type_end(b"a(sb", 0).is_err() && type_end(b"a{sv}", 0)? == 5);
        Ok(())
    }
}
