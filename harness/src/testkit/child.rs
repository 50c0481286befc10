//! The re-executed test binary's side: play one role (setup, writer,
//! checker, checker server, probe) and exit. This code runs in a process started by exec,
//! never in a forked copy of the test runner.

use std::fs::File;
use std::io::{BufRead, Write};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::{CheckerFn, FileSpec, WriterFn, ROLE_ENV};
use crate::external::{ENV_ACKS, ENV_DIR, ENV_SEED};

/// The descriptor the writer acknowledges on (and the checker server
/// answers on): the sh wrapper of the command moves crashlab's pipe there
/// (`3>&1`) and points standard output at `/dev/null`, where libtest's own
/// lines go.
pub(super) const ACK_FD: libc::c_int = 3;

/// What the probe prints so the test knows the re-execution reached `run`.
pub(super) const PROBE_TOKEN: &str = "crashlab-testkit-probe-reached";

/// Exit status of a writer or setup that failed (panic, `Err`, bad
/// environment): anything but 0 is a failure to crashlab; 1 and 2 are kept
/// apart from the checker's verdicts for readability of logs.
const EXIT_FAILED: i32 = 101;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Setup,
    Writer,
    Checker,
    /// Protocol v1.1: judge one directory per request on stdin.
    CheckerServer,
    Probe,
}

impl Role {
    /// The role this process was started for, if it is a re-execution.
    pub fn from_env() -> Option<Role> {
        let value = std::env::var_os(ROLE_ENV)?;
        Some(match value.to_str() {
            Some("setup") => Role::Setup,
            Some("writer") => Role::Writer,
            Some("checker") => Role::Checker,
            Some("checker-server") => Role::CheckerServer,
            Some("probe") => Role::Probe,
            _ => fail(&format!("{ROLE_ENV}={value:?} is not a role (setup, writer, checker, checker-server, probe)")),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Role::Setup => "setup",
            Role::Writer => "writer",
            Role::Checker => "checker",
            Role::CheckerServer => "checker-server",
            Role::Probe => "probe",
        }
    }
}

/// Print why this re-execution cannot do its job and exit with a status
/// crashlab reports as a failure (never as a pass or a verdict).
fn fail(message: &str) -> ! {
    eprintln!("crashlab testkit: {message}");
    std::process::exit(EXIT_FAILED)
}

/// One line: the checker's reason is the first line of its stderr.
fn one_line(text: &str) -> String {
    let joined = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" | ");
    if joined.is_empty() {
        "(the checker gave an empty reason)".to_owned()
    } else {
        joined
    }
}

/// Play `role` for the crash test named `test` and exit the process.
pub(super) fn serve(
    role: Role,
    test: &str,
    files: Vec<FileSpec>,
    writer: Option<WriterFn<'_>>,
    checker: Option<CheckerFn<'_>>,
) -> ! {
    // A test function that runs `run` on several threads reaches here more
    // than once: only the first plays the role; the process exits under the
    // others.
    static SERVING: AtomicBool = AtomicBool::new(false);
    if SERVING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    // The re-execution selected a test by the name the parent resolved;
    // a different name here means another CrashTest in that test function.
    let selected = std::env::args().nth(1).unwrap_or_default();
    if selected != test {
        fail(&format!(
            "this process was started to run crash test `{selected}` but reached CrashTest `{test}`: \
             use one CrashTest per test function, named after it"
        ));
    }
    // A panic in the checker closure reads the same under either protocol.
    let label = if role == Role::CheckerServer { Role::Checker.name() } else { role.name() };
    std::panic::set_hook(Box::new(move |info| {
        let location = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(a non-string panic payload)");
        // First line of stderr: for a checker it is the violation's reason;
        // a checker server answers with it.
        let text = format!("the {label} panicked{location}: {}", one_line(message));
        eprintln!("{text}");
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
    }));
    match role {
        Role::Probe => {
            // libtest may have left "test NAME ... " unfinished on stdout.
            println!("\n{PROBE_TOKEN} {test}");
            let _ = std::io::stdout().flush();
            std::process::exit(0)
        }
        Role::Setup => {
            let dir = env_dir();
            for f in &files {
                let path = dir.join(&f.name);
                let created = File::create(&path).and_then(|file| file.set_len(f.len as u64));
                if let Err(e) = created {
                    fail(&format!("setup: cannot create {} ({} bytes): {e}", path.display(), f.len));
                }
            }
            std::process::exit(0)
        }
        Role::Writer => {
            let Some(writer) = writer else { fail("the writer role reached a CrashTest without a writer") };
            redirect_stdout_to_stderr();
            claim_ack_fd();
            let mut ctx = WriterCtx::open(env_dir(), env_seed(), &files);
            match std::panic::catch_unwind(AssertUnwindSafe(|| writer(&mut ctx))) {
                Ok(Ok(())) => std::process::exit(0),
                Ok(Err(e)) => fail(&format!("the writer of `{test}` returned an error: {}", one_line(&e.to_string()))),
                // The hook has printed the panic.
                Err(_) => std::process::exit(EXIT_FAILED),
            }
        }
        Role::CheckerServer => {
            let Some(checker) = checker else { fail("the checker server reached a CrashTest without a checker") };
            redirect_stdout_to_stderr();
            claim_ack_fd();
            serve_checks(&checker)
        }
        Role::Checker => {
            let Some(checker) = checker else { fail("the checker role reached a CrashTest without a checker") };
            let dir = env_dir();
            let acks = env_acks();
            match std::panic::catch_unwind(AssertUnwindSafe(|| checker(&dir, &acks))) {
                Ok(Ok(())) => std::process::exit(0),
                Ok(Err(reason)) => {
                    eprintln!("{}", one_line(&reason));
                    std::process::exit(1)
                }
                // A panicking checker (an assert!) found a violation; the
                // hook printed its message as the reason.
                Err(_) => std::process::exit(1),
            }
        }
    }
}

/// The message of the last panic (the panic hook's line), for a checker
/// server's answer.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// The checker server (protocol v1.1): for each request line
/// `DIR<TAB>ACKS` on stdin, run the checker closure on `DIR` (also made
/// the working directory, as a v1 checker's) with the lines of `ACKS`, and
/// answer `ok` or `violation REASON` on the acknowledgement descriptor.
/// Exits 0 at the end of its input.
fn serve_checks(checker: &super::CheckerFn<'_>) -> ! {
    let mut input = std::io::stdin().lock();
    let mut request = String::new();
    loop {
        request.clear();
        match input.read_line(&mut request) {
            Ok(0) => std::process::exit(0),
            Ok(_) => {}
            Err(e) => fail(&format!("checker server: cannot read a request: {e}")),
        }
        let Some((dir, acks)) = request.trim_end_matches('\n').split_once('\t') else {
            fail(&format!("checker server: the request {request:?} is not DIR<TAB>ACKS"))
        };
        let dir = PathBuf::from(dir);
        let acks = read_acks(Path::new(acks));
        if let Err(e) = std::env::set_current_dir(&dir) {
            fail(&format!("checker server: cannot enter {}: {e}", dir.display()));
        }
        let answer = match std::panic::catch_unwind(AssertUnwindSafe(|| checker(&dir, &acks))) {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(reason)) => format!("violation {}", one_line(&reason)),
            // A panicking checker (an assert!) found a violation: the
            // hook's line is the reason, as a v1 checker's first stderr line.
            Err(_) => {
                let panic = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take();
                format!("violation {}", panic.unwrap_or_else(|| "the checker panicked".to_owned()))
            }
        };
        if let Err(e) = write_fd(ACK_FD, format!("{answer}\n").as_bytes()) {
            fail(&format!("checker server: cannot answer: {e}"));
        }
    }
}

fn env_dir() -> PathBuf {
    match std::env::var_os(ENV_DIR) {
        Some(d) => PathBuf::from(d),
        None => fail(&format!("{ENV_DIR} is not set: this process must be started by crashlab")),
    }
}

fn env_seed() -> u64 {
    let text = std::env::var(ENV_SEED).unwrap_or_default();
    text.parse().unwrap_or_else(|_| fail(&format!("{ENV_SEED}=`{text}` is not an unsigned integer")))
}

/// The acknowledged lines, in order (`CRASHLAB_ACKS`).
fn env_acks() -> Vec<String> {
    let Some(path) = std::env::var_os(ENV_ACKS) else { fail(&format!("{ENV_ACKS} is not set")) };
    read_acks(Path::new(&path))
}

fn read_acks(path: &Path) -> Vec<String> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect(),
        Err(e) => fail(&format!("cannot read the acks file {}: {e}", path.display())),
    }
}

/// All of `bytes` to the descriptor `fd`, in as few `write(2)`s as it takes.
fn write_fd(fd: libc::c_int, bytes: &[u8]) -> std::io::Result<()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: write from a live buffer to a descriptor of ours.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        rest = &rest[n as usize..];
    }
    Ok(())
}

/// libtest has printed its lines to `/dev/null` by now; from here on the
/// writer's `println!` goes to stderr, where crashlab keeps it for
/// diagnostics, not to the acknowledgement pipe.
fn redirect_stdout_to_stderr() {
    let _ = std::io::stdout().flush();
    // SAFETY: dup2 of two descriptors this process has open.
    if unsafe { libc::dup2(2, 1) } < 0 {
        fail(&format!("cannot point stdout at stderr: {}", std::io::Error::last_os_error()));
    }
}

/// Check that the acknowledgement pipe is there, and keep it from leaking
/// into programs the writer starts (they could write fake acks or hold the
/// pipe open past the writer's death).
fn claim_ack_fd() {
    // SAFETY: fcntl on a descriptor number; fails cleanly if it is not open.
    let flags = unsafe { libc::fcntl(ACK_FD, libc::F_GETFD) };
    if flags < 0 {
        fail(&format!("descriptor {ACK_FD} (the acknowledgement pipe) is not open: start the writer through crashlab"));
    }
    // SAFETY: as above, on an open descriptor.
    unsafe { libc::fcntl(ACK_FD, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// One declared file, mapped `MAP_SHARED` for the whole of its length.
struct MappedFile {
    name: String,
    file: File,
    ptr: *mut u8,
    len: usize,
}

/// What the writer closure gets: its files mapped `MAP_SHARED`, the trial
/// directory and seed, `msync`, and the acknowledgement channel.
///
/// The mappings stay until the process exits (they are never unmapped:
/// the process ends right after the writer returns).
pub struct WriterCtx {
    dir: PathBuf,
    seed: u64,
    files: Vec<MappedFile>,
    acks: u64,
}

impl WriterCtx {
    fn open(dir: PathBuf, seed: u64, specs: &[FileSpec]) -> WriterCtx {
        let mut files = Vec::with_capacity(specs.len());
        for spec in specs {
            let path = dir.join(&spec.name);
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap_or_else(|e| fail(&format!("cannot open {} (made by the setup): {e}", path.display())));
            // SAFETY: a fresh shared mapping of a file we opened read-write;
            // only this WriterCtx hands out references into it.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    spec.len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                fail(&format!("cannot map {}: {}", path.display(), std::io::Error::last_os_error()));
            }
            files.push(MappedFile { name: spec.name.clone(), file, ptr: ptr.cast(), len: spec.len });
        }
        WriterCtx { dir, seed, files, acks: 0 }
    }

    /// The trial directory (also the working directory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This trial's `CRASHLAB_SEED`: vary what you write with it.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Acknowledgements made so far.
    pub fn acks(&self) -> u64 {
        self.acks
    }

    fn only(&self) -> usize {
        match self.files.len() {
            1 => 0,
            0 => panic!("WriterCtx::map: the crash test declares no file (add .file(name, len))"),
            n => panic!("WriterCtx::map: the crash test declares {n} files: use map_of(name) / msync_of(name, ..)"),
        }
    }

    fn index_of(&self, name: &str) -> usize {
        self.files.iter().position(|f| f.name == name).unwrap_or_else(|| {
            let names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
            panic!("WriterCtx: no declared file named `{name}` (declared: {names:?})")
        })
    }

    fn bytes(&mut self, i: usize) -> &mut [u8] {
        let f = &self.files[i];
        // SAFETY: the mapping is `len` bytes, lives until the process exits,
        // and `&mut self` makes this the only reference into it.
        unsafe { std::slice::from_raw_parts_mut(f.ptr, f.len) }
    }

    /// The only declared file's mapping (panics if there is not exactly one).
    pub fn map(&mut self) -> &mut [u8] {
        let i = self.only();
        self.bytes(i)
    }

    /// The mapping of the declared file `name`.
    pub fn map_of(&mut self, name: &str) -> &mut [u8] {
        let i = self.index_of(name);
        self.bytes(i)
    }

    /// The open file behind the mapping `name` (for `sync_all`, `set_len`...).
    pub fn file(&self, name: &str) -> &File {
        &self.files[self.index_of(name)].file
    }

    /// `msync(MS_SYNC)` of the pages covering `range` of the only file.
    pub fn msync(&self, range: Range<usize>) -> std::io::Result<()> {
        self.msync_at(self.only(), range)
    }

    /// `msync(MS_SYNC)` of the pages covering `range` of the file `name`.
    pub fn msync_of(&self, name: &str, range: Range<usize>) -> std::io::Result<()> {
        self.msync_at(self.index_of(name), range)
    }

    fn msync_at(&self, i: usize, range: Range<usize>) -> std::io::Result<()> {
        let f = &self.files[i];
        if range.start > range.end || range.end > f.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("msync of {}: range {range:?} is outside its {} bytes", f.name, f.len),
            ));
        }
        if range.is_empty() {
            return Ok(());
        }
        let start = range.start / page_size() * page_size();
        // SAFETY: a page-aligned range inside the mapping.
        if unsafe { libc::msync(f.ptr.add(start).cast(), range.end - start, libc::MS_SYNC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Acknowledge one operation as durable: `line` and a newline in one
    /// `write(2)`, so crashlab sees it at once. The line must not contain a
    /// newline (it would be two acknowledgements).
    pub fn ack(&mut self, line: impl AsRef<str>) {
        let line = line.as_ref();
        assert!(!line.contains('\n'), "WriterCtx::ack: an ack line cannot contain a newline: {line:?}");
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if let Err(e) = write_fd(ACK_FD, &bytes) {
            // crashlab is gone or closed the pipe: nobody can hear acks.
            fail(&format!("cannot write an acknowledgement: {e}"));
        }
        self.acks += 1;
    }
}
