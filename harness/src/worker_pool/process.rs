//! One worker process seen from the pool: started by fork+exec, fed JSON
//! lines on its stdin, answering JSON lines on its stdout. Owned by one
//! thread of the pool, which lives exactly as long as the worker, so the
//! worker's parent-death signal fires if that thread's process dies.

use std::fmt::Debug;
use std::io::{BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{WorkerArgv, WorkerCommand, WorkerError};

/// An answer of a worker protocol: some variant carries the worker's own
/// error message (`Error { message }`).
pub trait WorkerAnswer: DeserializeOwned + Debug {
    /// The message of an error answer, `None` for any other answer.
    fn refusal(&self) -> Option<&str>;
}

/// A running worker: requests `Req`, answers `Resp`. Dropping it closes its
/// stdin, which ends its loop (it removes its files, unmounts, detaches),
/// and reaps it.
pub struct WorkerProcess<Req, Resp> {
    /// Names the worker in errors: "worker", "realcut worker".
    role: &'static str,
    id: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    messages: PhantomData<fn(&Req) -> Resp>,
}

impl<Req: Serialize, Resp: WorkerAnswer> WorkerProcess<Req, Resp> {
    /// Start `command` with `argv` appended; the worker gets SIGKILL when the
    /// calling thread ends.
    pub fn spawn(role: &'static str, command: &WorkerCommand, argv: &WorkerArgv) -> Result<Self, WorkerError> {
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args)
            .args(argv.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: prctl is async-signal-safe. The worker dies with the thread
        // that owns it, never outliving an interrupted harness.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| WorkerError::Io {
            what: format!("cannot start {role} `{}`", command.program.display()),
            source,
        })?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(WorkerProcess { role, id: argv.id, child, stdin, stdout, messages: PhantomData })
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// The operating system's id of the worker process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send one request and wait for its answer (see [`WorkerProcess::recv`]).
    pub fn request(&mut self, req: &Req, cancel: Option<&AtomicBool>) -> Result<Resp, WorkerError> {
        self.send(req)?;
        self.recv(cancel)
    }

    pub fn send(&mut self, req: &Req) -> Result<(), WorkerError> {
        let mut line = serde_json::to_vec(req).expect("requests serialize");
        line.push(b'\n');
        let stdin = self.stdin.as_mut().expect("stdin open while the worker serves");
        if stdin.write_all(&line).and_then(|_| stdin.flush()).is_err() {
            return Err(self.died("cannot send a request"));
        }
        Ok(())
    }

    /// Wait for the next answer. With `cancel`, the worker is killed once it
    /// is set (its writer child dies with it, by its parent-death signal)
    /// and the wait ends with [`WorkerError::Interrupted`]: a worker
    /// preparing a large file, or running a batch of long trials, may not
    /// answer for seconds, and Ctrl-C must not wait for it. Without, the
    /// wait lasts until the worker answers or ends (a worker whose cleanup
    /// only it can do, such as unmounting in the caller's namespace).
    pub fn recv(&mut self, cancel: Option<&AtomicBool>) -> Result<Resp, WorkerError> {
        if let Some(cancel) = cancel {
            self.wait_readable(cancel)?;
        }
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer) {
            Ok(0) | Err(_) => return Err(self.died("no answer")),
            Ok(_) => {}
        }
        match serde_json::from_str::<Resp>(&answer) {
            Ok(r) => match r.refusal() {
                Some(message) => Err(self.failed(message.to_string())),
                None => Ok(r),
            },
            Err(e) => Err(self.failed(format!("unreadable answer ({e}): {answer}"))),
        }
    }

    /// The error for an answer the caller did not expect.
    pub fn unexpected(&self, answer: &Resp) -> WorkerError {
        self.failed(format!("unexpected answer {answer:?}"))
    }

    pub fn failed(&self, message: String) -> WorkerError {
        WorkerError::Failed { role: self.role, id: self.id, message }
    }

    fn wait_readable(&mut self, cancel: &AtomicBool) -> Result<(), WorkerError> {
        use std::os::unix::io::AsRawFd;
        let fd = self.stdout.get_ref().as_raw_fd();
        while self.stdout.buffer().is_empty() {
            if cancel.load(Ordering::SeqCst) {
                let _ = self.child.kill();
                return Err(WorkerError::Interrupted);
            }
            let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one pollfd on a descriptor we own, for 50 ms.
            let rc = unsafe { libc::poll(&mut pfd, 1, 50) };
            if rc > 0 {
                break; // readable, or closed: read_line says which
            }
            if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break; // let read_line report it
            }
        }
        Ok(())
    }

    /// The worker stopped talking: close its stdin, reap it, say how it ended.
    fn died(&mut self, what: &str) -> WorkerError {
        drop(self.stdin.take());
        let status = self.child.wait().ok();
        self.failed(format!(
            "{what}; worker {}",
            status.map_or("is unresponsive".to_string(), |s| format!("ended with {s}"))
        ))
    }
}

impl<Req, Resp> Drop for WorkerProcess<Req, Resp> {
    fn drop(&mut self) {
        // Closing stdin ends the worker's loop; it cleans up after itself.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize)]
    struct Ping {
        n: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "response", rename_all = "snake_case")]
    enum Pong {
        Pong { n: u32 },
        Error { message: String },
    }

    impl WorkerAnswer for Pong {
        fn refusal(&self) -> Option<&str> {
            match self {
                Pong::Error { message } => Some(message),
                _ => None,
            }
        }
    }

    /// A worker written in sh: the pool appends the common arguments, which
    /// become `$1...` of the script.
    pub(crate) fn sh_worker(script: &str) -> WorkerCommand {
        WorkerCommand { program: "/bin/sh".into(), args: vec!["-c".into(), script.into(), "sh".into()] }
    }

    fn argv(id: u32) -> WorkerArgv {
        WorkerArgv { dir: "/nonexistent".into(), id, watchdog_secs: 60, switches: vec![] }
    }

    fn alive(pid: u32) -> bool {
        // A reaped child's pid is gone (signal 0 only checks existence).
        // SAFETY: kill with signal 0 sends nothing.
        unsafe { libc::kill(pid as i32, 0) == 0 }
    }

    #[test]
    fn a_worker_answers_line_by_line_and_its_error_answers_name_it() {
        let cmd = sh_worker(
            r#"read a; echo '{"response":"pong","n":1}'; read b; echo '{"response":"error","message":"no spec"}'"#,
        );
        let mut w = WorkerProcess::<Ping, Pong>::spawn("test worker", &cmd, &argv(4)).unwrap();
        assert!(matches!(w.request(&Ping { n: 1 }, None).unwrap(), Pong::Pong { n: 1 }));
        let err = w.request(&Ping { n: 2 }, None).unwrap_err().to_string();
        assert_eq!(err, "test worker 4: no spec");
    }

    #[test]
    fn a_worker_that_dies_mid_request_yields_an_error_naming_it_and_its_exit() {
        let cmd = sh_worker("read a; exit 3");
        let mut w = WorkerProcess::<Ping, Pong>::spawn("test worker", &cmd, &argv(2)).unwrap();
        let err = w.request(&Ping { n: 1 }, Some(&AtomicBool::new(false))).unwrap_err().to_string();
        assert!(err.starts_with("test worker 2: no answer; worker ended with"), "{err}");
        assert!(err.contains('3'), "the exit status is named: {err}");
    }

    #[test]
    fn a_missing_worker_program_is_named() {
        let cmd = WorkerCommand::binary("/nonexistent/crashlab");
        let err = WorkerProcess::<Ping, Pong>::spawn("test worker", &cmd, &argv(0)).err().unwrap().to_string();
        assert!(err.starts_with("cannot start test worker `/nonexistent/crashlab`"), "{err}");
    }

    #[test]
    fn a_cancelled_wait_kills_the_worker_instead_of_waiting_for_it() {
        // The worker never answers; only the kill ends the wait. The bound
        // tells a kill (milliseconds) apart from the worker's own end (600 s).
        let cmd = sh_worker("exec sleep 600");
        let mut w = WorkerProcess::<Ping, Pong>::spawn("test worker", &cmd, &argv(1)).unwrap();
        let pid = w.pid();
        let cancel = AtomicBool::new(false);
        let start = Instant::now();
        let err = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                cancel.store(true, Ordering::SeqCst);
            });
            w.recv(Some(&cancel)).unwrap_err()
        });
        assert!(matches!(err, WorkerError::Interrupted), "{err}");
        assert!(start.elapsed() < Duration::from_secs(300), "the wait outlived the cancel");
        drop(w);
        assert!(!alive(pid), "the cancelled worker is dead and reaped");
    }
}
