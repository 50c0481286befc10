//! A minimal NBD server: a [`VolatileDisk`] served over a Unix socket, on a
//! thread of the harness (no fork: the harness may be multithreaded), so
//! that qemu's NBD client is the guest's disk and every write, FLUSH and
//! FUA write the guest's block layer issues reaches the model.
//!
//! Protocol (the NBD protocol's `proto.md`, the subset qemu's client needs):
//! fixed newstyle handshake; `NBD_OPT_GO`/`NBD_OPT_INFO` (answered with
//! `NBD_INFO_EXPORT`, and `NBD_INFO_BLOCK_SIZE` when asked: 512-byte
//! minimum, so that writes come in whole sectors, the unit the torn model
//! tears at) and `NBD_OPT_EXPORT_NAME`; every other option gets
//! `NBD_REP_ERR_UNSUP` (so no structured replies, no metadata contexts).
//! Transmission flags `HAS_FLAGS|SEND_FLUSH|SEND_FUA`; simple replies only;
//! commands READ, WRITE (honouring `NBD_CMD_FLAG_FUA`), FLUSH and DISC;
//! any other command gets `EINVAL`. Requests are served one at a time, in
//! arrival order, so a FLUSH covers every write answered before it, as the
//! protocol requires.
//!
//! One export (any name), one connection at a time. A client that vanishes
//! (qemu SIGKILLed: the power cut) ends its connection; whatever it had
//! sent and the server had read is in the disk, flushed or not.

use std::io::{BufReader, Read};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use super::volatile_disk::VolatileDisk;
use super::RealcutError;

/// `NBDMAGIC`: the first word of the handshake.
pub const NBD_MAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: newstyle handshake, and the start of every option.
pub const NBD_IHAVEOPT: u64 = 0x4948_4156_454f_5054;
pub const NBD_OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
pub const NBD_REQUEST_MAGIC: u32 = 0x2560_9513;
pub const NBD_SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

pub const NBD_FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
pub const NBD_FLAG_NO_ZEROES: u16 = 1 << 1;
pub const NBD_FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;
pub const NBD_FLAG_C_NO_ZEROES: u32 = 1 << 1;

pub const NBD_OPT_EXPORT_NAME: u32 = 1;
pub const NBD_OPT_ABORT: u32 = 2;
pub const NBD_OPT_INFO: u32 = 6;
pub const NBD_OPT_GO: u32 = 7;
pub const NBD_OPT_STRUCTURED_REPLY: u32 = 8;

pub const NBD_REP_ACK: u32 = 1;
pub const NBD_REP_INFO: u32 = 3;
pub const NBD_REP_ERR_UNSUP: u32 = (1 << 31) + 1;
pub const NBD_REP_ERR_INVALID: u32 = (1 << 31) + 3;

pub const NBD_INFO_EXPORT: u16 = 0;
pub const NBD_INFO_BLOCK_SIZE: u16 = 3;

pub const NBD_FLAG_HAS_FLAGS: u16 = 1 << 0;
pub const NBD_FLAG_SEND_FLUSH: u16 = 1 << 2;
pub const NBD_FLAG_SEND_FUA: u16 = 1 << 3;
/// What this server does: flushes and FUA writes (the volatile cache needs both).
pub const TRANSMISSION_FLAGS: u16 = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;

pub const NBD_CMD_READ: u16 = 0;
pub const NBD_CMD_WRITE: u16 = 1;
pub const NBD_CMD_DISC: u16 = 2;
pub const NBD_CMD_FLUSH: u16 = 3;
pub const NBD_CMD_FLAG_FUA: u16 = 1 << 0;

pub const NBD_EINVAL: u32 = 22;
pub const NBD_ENOSPC: u32 = 28;

/// Block sizes announced when asked: whole sectors, 4 KiB preferred, and
/// the largest request served (qemu's own limit).
pub const MIN_BLOCK: u32 = 512;
pub const PREFERRED_BLOCK: u32 = 4096;
pub const MAX_REQUEST: u32 = 32 << 20;
/// Longest option accepted (export names are at most 4096 bytes).
const MAX_OPTION: u32 = 64 << 10;

/// What the client asked of the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NbdStats {
    pub connections: u64,
    pub reads: u64,
    pub writes: u64,
    /// Of `writes`, those with `NBD_CMD_FLAG_FUA`.
    pub fua_writes: u64,
    pub flushes: u64,
    pub bytes_written: u64,
    /// Requests answered with an error (unknown command, out of range).
    pub rejected: u64,
}

type Served = Result<(VolatileDisk, NbdStats), RealcutError>;

/// A running server. [`finish`](Self::finish) hands the disk back.
pub struct NbdServer {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    /// The connection being served, so that dropping the server can end it.
    active: Arc<Mutex<Option<UnixStream>>>,
    thread: Option<JoinHandle<Served>>,
}

impl NbdServer {
    /// Listen on `socket` (replacing a stale one) and serve `disk` on a new thread.
    pub fn start(socket: &Path, disk: VolatileDisk) -> Result<NbdServer, RealcutError> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)
            .map_err(|source| RealcutError::Sys { what: format!("cannot listen on {}", socket.display()), source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(Mutex::new(None));
        let (s, a, path) = (stop.clone(), active.clone(), socket.to_owned());
        let thread = std::thread::Builder::new()
            .name("crashlab-nbd".into())
            .spawn(move || accept_loop(listener, disk, &s, &a, &path))
            .map_err(|source| RealcutError::Sys { what: "cannot start the NBD server thread".into(), source })?;
        Ok(NbdServer { socket: socket.to_owned(), stop, active, thread: Some(thread) })
    }

    /// Stop accepting, wait for the client to be gone (kill it first), and
    /// hand back the disk as the client left it with what it asked.
    pub fn finish(mut self) -> Served {
        self.stop.store(true, Ordering::SeqCst);
        // Wake a blocked accept(); the loop sees `stop` and ends.
        let _ = UnixStream::connect(&self.socket);
        let thread = self.thread.take().expect("finished once");
        let served = thread.join().unwrap_or_else(|_| {
            Err(RealcutError::Spec(format!("the NBD server on {} panicked", self.socket.display())))
        });
        let _ = std::fs::remove_file(&self.socket);
        served
    }
}

impl Drop for NbdServer {
    /// On an error path: end the connection too, so the join cannot hang.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(c) = self.active.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
            let _ = UnixStream::connect(&self.socket);
            let _ = thread.join();
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

fn accept_loop(
    listener: UnixListener,
    mut disk: VolatileDisk,
    stop: &AtomicBool,
    active: &Mutex<Option<UnixStream>>,
    socket: &Path,
) -> Served {
    let mut stats = NbdStats::default();
    loop {
        let (conn, _) = listener
            .accept()
            .map_err(|source| RealcutError::Sys { what: format!("accept on {}", socket.display()), source })?;
        if stop.load(Ordering::SeqCst) {
            return Ok((disk, stats));
        }
        stats.connections += 1;
        *active.lock().unwrap_or_else(|p| p.into_inner()) = conn.try_clone().ok();
        let served = serve_connection(&conn, &mut disk, &mut stats);
        *active.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match served {
            Ok(()) | Err(ConnError::Gone) => {}
            Err(ConnError::Protocol(why)) => {
                return Err(RealcutError::Spec(format!("NBD client on {}: {why}", socket.display())))
            }
            Err(ConnError::Io(source)) => {
                return Err(RealcutError::Sys { what: format!("NBD connection on {}", socket.display()), source })
            }
        }
    }
}

enum ConnError {
    /// The client went away (EOF, reset, broken pipe): for qemu, the power cut.
    Gone,
    Protocol(String),
    Io(std::io::Error),
}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> ConnError {
        use std::io::ErrorKind::*;
        match e.kind() {
            UnexpectedEof | ConnectionReset | BrokenPipe | ConnectionAborted => ConnError::Gone,
            _ => ConnError::Io(e),
        }
    }
}

struct Conn<'a> {
    reader: BufReader<&'a UnixStream>,
    stream: &'a UnixStream,
}

impl Conn<'_> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, ConnError> {
        let mut b = vec![0; n];
        self.reader.read_exact(&mut b)?;
        Ok(b)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ConnError> {
        let mut b = [0; N];
        self.reader.read_exact(&mut b)?;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16, ConnError> {
        self.array().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, ConnError> {
        self.array().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, ConnError> {
        self.array().map(u64::from_be_bytes)
    }

    /// Send all of `buf`. `MSG_NOSIGNAL`: a client killed mid-reply is an
    /// EPIPE here, never a SIGPIPE for the whole harness.
    fn send(&self, mut buf: &[u8]) -> Result<(), ConnError> {
        while !buf.is_empty() {
            // SAFETY: a valid buffer of buf.len() bytes on a socket we hold open.
            let n = unsafe { libc::send(self.stream.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            buf = &buf[n as usize..];
        }
        Ok(())
    }

    fn option_reply(&self, option: u32, kind: u32, data: &[u8]) -> Result<(), ConnError> {
        let mut r = Vec::with_capacity(20 + data.len());
        r.extend_from_slice(&NBD_OPT_REPLY_MAGIC.to_be_bytes());
        r.extend_from_slice(&option.to_be_bytes());
        r.extend_from_slice(&kind.to_be_bytes());
        r.extend_from_slice(&(data.len() as u32).to_be_bytes());
        r.extend_from_slice(data);
        self.send(&r)
    }

    fn simple_reply(&self, error: u32, handle: u64, data: &[u8]) -> Result<(), ConnError> {
        let mut r = Vec::with_capacity(16 + data.len());
        r.extend_from_slice(&NBD_SIMPLE_REPLY_MAGIC.to_be_bytes());
        r.extend_from_slice(&error.to_be_bytes());
        r.extend_from_slice(&handle.to_be_bytes());
        r.extend_from_slice(data);
        self.send(&r)
    }
}

fn serve_connection(stream: &UnixStream, disk: &mut VolatileDisk, stats: &mut NbdStats) -> Result<(), ConnError> {
    let mut c = Conn { reader: BufReader::with_capacity(1 << 16, stream), stream };
    if handshake(&mut c, disk.size())? {
        transmission(&mut c, disk, stats)?;
    }
    Ok(())
}

/// The fixed newstyle handshake. `Ok(true)`: go on to transmission;
/// `Ok(false)`: the client aborted.
fn handshake(c: &mut Conn<'_>, size: u64) -> Result<bool, ConnError> {
    let mut hello = Vec::with_capacity(18);
    hello.extend_from_slice(&NBD_MAGIC.to_be_bytes());
    hello.extend_from_slice(&NBD_IHAVEOPT.to_be_bytes());
    hello.extend_from_slice(&(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES).to_be_bytes());
    c.send(&hello)?;
    let client_flags = c.u32()?;
    if client_flags & !(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES) != 0 {
        // The protocol says: drop the connection on unknown client flags.
        return Err(ConnError::Protocol(format!("unknown client flags {client_flags:#x}")));
    }
    let no_zeroes = client_flags & NBD_FLAG_C_NO_ZEROES != 0;
    loop {
        let magic = c.u64()?;
        if magic != NBD_IHAVEOPT {
            return Err(ConnError::Protocol(format!("option magic {magic:#x}, expected IHAVEOPT")));
        }
        let option = c.u32()?;
        let len = c.u32()?;
        if len > MAX_OPTION {
            return Err(ConnError::Protocol(format!("option {option} of {len} bytes")));
        }
        let data = c.bytes(len as usize)?;
        match option {
            NBD_OPT_EXPORT_NAME => {
                // No reply header: size, flags, and the reserved zeroes.
                let mut r = Vec::with_capacity(134);
                r.extend_from_slice(&size.to_be_bytes());
                r.extend_from_slice(&TRANSMISSION_FLAGS.to_be_bytes());
                if !no_zeroes {
                    r.extend_from_slice(&[0; 124]);
                }
                c.send(&r)?;
                return Ok(true);
            }
            NBD_OPT_ABORT => {
                c.option_reply(option, NBD_REP_ACK, &[])?;
                return Ok(false);
            }
            NBD_OPT_INFO | NBD_OPT_GO => {
                let Some(requests) = info_requests(&data) else {
                    c.option_reply(option, NBD_REP_ERR_INVALID, b"malformed NBD_OPT_GO/INFO")?;
                    continue;
                };
                let mut export = NBD_INFO_EXPORT.to_be_bytes().to_vec();
                export.extend_from_slice(&size.to_be_bytes());
                export.extend_from_slice(&TRANSMISSION_FLAGS.to_be_bytes());
                c.option_reply(option, NBD_REP_INFO, &export)?;
                if requests.contains(&NBD_INFO_BLOCK_SIZE) {
                    let mut b = NBD_INFO_BLOCK_SIZE.to_be_bytes().to_vec();
                    for v in [MIN_BLOCK, PREFERRED_BLOCK, MAX_REQUEST] {
                        b.extend_from_slice(&v.to_be_bytes());
                    }
                    c.option_reply(option, NBD_REP_INFO, &b)?;
                }
                c.option_reply(option, NBD_REP_ACK, &[])?;
                if option == NBD_OPT_GO {
                    return Ok(true);
                }
            }
            // Structured replies, metadata contexts, TLS, lists, extended
            // headers: not offered; the client falls back.
            _ => c.option_reply(option, NBD_REP_ERR_UNSUP, &[])?,
        }
    }
}

/// The information types an `NBD_OPT_GO`/`NBD_OPT_INFO` asks for: 32-bit
/// name length, name, 16-bit count, 16-bit types. `None` if malformed.
fn info_requests(data: &[u8]) -> Option<Vec<u16>> {
    let name_len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let rest = data.get(4 + name_len..)?;
    let n = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let list = rest.get(2..)?;
    if list.len() != 2 * n {
        return None;
    }
    Some(list.chunks(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect())
}

fn transmission(c: &mut Conn<'_>, disk: &mut VolatileDisk, stats: &mut NbdStats) -> Result<(), ConnError> {
    loop {
        let magic = c.u32()?;
        if magic != NBD_REQUEST_MAGIC {
            return Err(ConnError::Protocol(format!("request magic {magic:#x}")));
        }
        let flags = c.u16()?;
        let kind = c.u16()?;
        let handle = c.u64()?;
        let offset = c.u64()?;
        let len = c.u32()?;
        match kind {
            NBD_CMD_READ => {
                let data = if len <= MAX_REQUEST { disk.read(offset, len as u64).ok() } else { None };
                match data {
                    Some(d) => {
                        stats.reads += 1;
                        c.simple_reply(0, handle, d)?;
                    }
                    None => {
                        stats.rejected += 1;
                        c.simple_reply(NBD_EINVAL, handle, &[])?;
                    }
                }
            }
            NBD_CMD_WRITE => {
                if len > MAX_REQUEST {
                    // Its payload cannot be skipped safely: hang up.
                    return Err(ConnError::Protocol(format!("write of {len} bytes, above {MAX_REQUEST}")));
                }
                let data = c.bytes(len as usize)?;
                let fua = flags & NBD_CMD_FLAG_FUA != 0;
                match disk.write(offset, &data, fua) {
                    Ok(_) => {
                        stats.writes += 1;
                        stats.fua_writes += fua as u64;
                        stats.bytes_written += len as u64;
                        c.simple_reply(0, handle, &[])?;
                    }
                    Err(_) => {
                        stats.rejected += 1;
                        c.simple_reply(NBD_ENOSPC, handle, &[])?;
                    }
                }
            }
            NBD_CMD_FLUSH => {
                disk.flush();
                stats.flushes += 1;
                c.simple_reply(0, handle, &[])?;
            }
            // A disconnect flushes nothing: the cache stays volatile.
            NBD_CMD_DISC => return Ok(()),
            _ => {
                stats.rejected += 1;
                c.simple_reply(NBD_EINVAL, handle, &[])?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::realcut::volatile_disk::DiskCutMode;

    /// A test client speaking the protocol from the other side.
    struct Client(UnixStream);

    impl Client {
        fn read_n<const N: usize>(&mut self) -> [u8; N] {
            let mut b = [0; N];
            self.0.read_exact(&mut b).unwrap();
            b
        }
        fn u16(&mut self) -> u16 {
            u16::from_be_bytes(self.read_n())
        }
        fn u32(&mut self) -> u32 {
            u32::from_be_bytes(self.read_n())
        }
        fn u64(&mut self) -> u64 {
            u64::from_be_bytes(self.read_n())
        }

        /// Connect, check the greeting, send the client flags.
        fn greet(socket: &Path, client_flags: u32) -> Client {
            let mut c = Client(UnixStream::connect(socket).unwrap());
            assert_eq!(c.u64(), NBD_MAGIC);
            assert_eq!(c.u64(), NBD_IHAVEOPT);
            assert_eq!(c.u16(), NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
            c.0.write_all(&client_flags.to_be_bytes()).unwrap();
            c
        }

        fn option(&mut self, option: u32, data: &[u8]) {
            let mut m = NBD_IHAVEOPT.to_be_bytes().to_vec();
            m.extend_from_slice(&option.to_be_bytes());
            m.extend_from_slice(&(data.len() as u32).to_be_bytes());
            m.extend_from_slice(data);
            self.0.write_all(&m).unwrap();
        }

        /// One option reply: (option, type, data).
        fn option_reply(&mut self) -> (u32, u32, Vec<u8>) {
            assert_eq!(self.u64(), NBD_OPT_REPLY_MAGIC);
            let (option, kind, len) = (self.u32(), self.u32(), self.u32());
            let mut data = vec![0; len as usize];
            self.0.read_exact(&mut data).unwrap();
            (option, kind, data)
        }

        fn request(&mut self, flags: u16, kind: u16, handle: u64, offset: u64, len: u32, payload: &[u8]) {
            let mut m = NBD_REQUEST_MAGIC.to_be_bytes().to_vec();
            m.extend_from_slice(&flags.to_be_bytes());
            m.extend_from_slice(&kind.to_be_bytes());
            m.extend_from_slice(&handle.to_be_bytes());
            m.extend_from_slice(&offset.to_be_bytes());
            m.extend_from_slice(&len.to_be_bytes());
            m.extend_from_slice(payload);
            self.0.write_all(&m).unwrap();
        }

        /// A simple reply: (error, handle).
        fn reply(&mut self) -> (u32, u64) {
            assert_eq!(self.u32(), NBD_SIMPLE_REPLY_MAGIC);
            (self.u32(), self.u64())
        }

        fn write(&mut self, handle: u64, offset: u64, data: &[u8], fua: bool) {
            let flags = if fua { NBD_CMD_FLAG_FUA } else { 0 };
            self.request(flags, NBD_CMD_WRITE, handle, offset, data.len() as u32, data);
            assert_eq!(self.reply(), (0, handle));
        }

        fn read(&mut self, handle: u64, offset: u64, len: u32) -> Vec<u8> {
            self.request(0, NBD_CMD_READ, handle, offset, len, &[]);
            assert_eq!(self.reply(), (0, handle));
            let mut d = vec![0; len as usize];
            self.0.read_exact(&mut d).unwrap();
            d
        }
    }

    fn go_data(name: &str, infos: &[u16]) -> Vec<u8> {
        let mut d = (name.len() as u32).to_be_bytes().to_vec();
        d.extend_from_slice(name.as_bytes());
        d.extend_from_slice(&(infos.len() as u16).to_be_bytes());
        for i in infos {
            d.extend_from_slice(&i.to_be_bytes());
        }
        d
    }

    #[test]
    fn qemu_style_go_handshake_then_writes_flushes_and_fua_reach_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let server = NbdServer::start(&socket, VolatileDisk::new(vec![0; 8192])).unwrap();
        let mut c = Client::greet(&socket, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
        // What qemu asks first: structured replies, which are not offered.
        c.option(NBD_OPT_STRUCTURED_REPLY, &[]);
        assert_eq!(c.option_reply(), (NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_UNSUP, vec![]));
        c.option(NBD_OPT_GO, &go_data("", &[NBD_INFO_BLOCK_SIZE]));
        let (o, k, export) = c.option_reply();
        assert_eq!((o, k), (NBD_OPT_GO, NBD_REP_INFO));
        let mut want = NBD_INFO_EXPORT.to_be_bytes().to_vec();
        want.extend_from_slice(&8192u64.to_be_bytes());
        want.extend_from_slice(&(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA).to_be_bytes());
        assert_eq!(export, want);
        let (_, k, block) = c.option_reply();
        assert_eq!(k, NBD_REP_INFO);
        assert_eq!(&block[..2], &NBD_INFO_BLOCK_SIZE.to_be_bytes());
        assert_eq!(u32::from_be_bytes(block[2..6].try_into().unwrap()), 512, "whole sectors");
        assert_eq!(c.option_reply(), (NBD_OPT_GO, NBD_REP_ACK, vec![]));

        c.write(1, 0, &[0xAA; 512], false);
        c.request(0, NBD_CMD_FLUSH, 2, 0, 0, &[]);
        assert_eq!(c.reply(), (0, 2));
        c.write(3, 512, &[0xBB; 512], false);
        c.write(4, 1024, &[0xCC; 512], true);
        assert_eq!(c.read(5, 0, 1536), [[0xAA; 512], [0xBB; 512], [0xCC; 512]].concat(), "reads see the newest");
        // Write-zeroes (6) was not offered: EINVAL, and the connection goes on.
        c.request(0, 6, 6, 0, 512, &[]);
        assert_eq!(c.reply(), (NBD_EINVAL, 6));
        c.request(0, NBD_CMD_READ, 7, 8000, 512, &[]);
        assert_eq!(c.reply(), (NBD_EINVAL, 7), "a read past the end");
        c.request(0, NBD_CMD_DISC, 8, 0, 0, &[]);
        drop(c);

        let (disk, stats) = server.finish().unwrap();
        assert_eq!(
            stats,
            NbdStats {
                connections: 1,
                reads: 1,
                writes: 3,
                fua_writes: 1,
                flushes: 1,
                bytes_written: 1536,
                rejected: 2
            }
        );
        // w0 flushed, w1 pending, w2 FUA: the durable image has w0 and w2.
        assert_eq!(disk.pending_writes(), vec![1]);
        let durable = disk.image(&VolatileDisk::none_kept(DiskCutMode::Reorder)).unwrap();
        assert_eq!((durable[0], durable[512], durable[1024]), (0xAA, 0, 0xCC));
        assert!(!socket.exists(), "the socket is removed");
    }

    #[test]
    fn export_name_handshake_sends_size_flags_and_the_zeroes_unless_told_not_to() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let server = NbdServer::start(&socket, VolatileDisk::new(vec![7; 4096])).unwrap();
        for no_zeroes in [false, true] {
            let flags = NBD_FLAG_C_FIXED_NEWSTYLE | if no_zeroes { NBD_FLAG_C_NO_ZEROES } else { 0 };
            let mut c = Client::greet(&socket, flags);
            c.option(NBD_OPT_EXPORT_NAME, b"anything");
            assert_eq!(c.u64(), 4096);
            assert_eq!(c.u16(), TRANSMISSION_FLAGS);
            if !no_zeroes {
                assert_eq!(c.read_n::<124>(), [0; 124]);
            }
            // The next bytes are the reply to our first request.
            assert_eq!(c.read(1, 4000, 96), vec![7; 96]);
            // The client dies without NBD_CMD_DISC (qemu killed).
        }
        let (disk, stats) = server.finish().unwrap();
        assert_eq!((stats.connections, stats.reads, stats.writes), (2, 2, 0));
        assert_eq!(disk.writes_received(), 0);
    }

    #[test]
    fn a_write_cut_off_mid_payload_never_reaches_the_disk_and_aborts_and_bad_flags_end_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let server = NbdServer::start(&socket, VolatileDisk::new(vec![0; 4096])).unwrap();
        let mut c = Client::greet(&socket, NBD_FLAG_C_FIXED_NEWSTYLE);
        c.option(NBD_OPT_INFO, &go_data("x", &[]));
        assert_eq!(c.option_reply().1, NBD_REP_INFO);
        assert_eq!(c.option_reply().1, NBD_REP_ACK, "no block size unless asked");
        c.option(NBD_OPT_GO, &[0, 0, 0, 9]);
        assert_eq!(c.option_reply().1, NBD_REP_ERR_INVALID, "a name longer than the option");
        c.option(NBD_OPT_GO, &go_data("", &[]));
        assert_eq!(c.option_reply().1, NBD_REP_INFO);
        assert_eq!(c.option_reply().1, NBD_REP_ACK);
        // Half a write's payload, then the client vanishes.
        c.request(0, NBD_CMD_WRITE, 1, 0, 512, &[1; 200]);
        drop(c);
        let mut c = Client::greet(&socket, NBD_FLAG_C_FIXED_NEWSTYLE);
        c.option(NBD_OPT_ABORT, &[]);
        assert_eq!(c.option_reply(), (NBD_OPT_ABORT, NBD_REP_ACK, vec![]));
        drop(c);
        let (disk, stats) = server.finish().unwrap();
        assert_eq!(stats.writes, 0);
        assert_eq!(disk.writes_received(), 0);
        assert_eq!(stats.connections, 2);

        let server = NbdServer::start(&socket, VolatileDisk::new(vec![0; 4096])).unwrap();
        let mut c = Client::greet(&socket, 1 << 5);
        let mut b = [0u8; 1];
        assert_eq!(c.0.read(&mut b).unwrap(), 0, "unknown client flags: the server hangs up");
        let err = server.finish().unwrap_err().to_string();
        assert!(err.contains("unknown client flags") && err.contains("d.sock"), "{err}");
    }

    #[test]
    fn a_server_nobody_connected_to_finishes_and_one_dropped_with_a_live_client_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let server = NbdServer::start(&socket, VolatileDisk::new(vec![0; 512])).unwrap();
        let (disk, stats) = server.finish().unwrap();
        assert_eq!((disk.size(), stats.connections), (512, 0));
        let server = NbdServer::start(&socket, VolatileDisk::new(vec![0; 512])).unwrap();
        let c = Client::greet(&socket, NBD_FLAG_C_FIXED_NEWSTYLE);
        drop(server);
        assert!(!socket.exists());
        drop(c);
    }
}
