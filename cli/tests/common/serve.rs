//! `budgit serve` as a real process on a free loopback port: started, waited for until it
//! listens, its stderr kept, and killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// What the service prints once it accepts connections; port 0 is resolved in it.
const LISTENING: &str = "budgit serve listening on http://";

/// How long a start may take before the test fails (a cold debug build under load).
const START: Duration = Duration::from_secs(60);

/// A running `budgit serve`, killed (SIGKILL) when dropped.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every stderr line, in order, as it arrives (the listening line included).
    pub lines: mpsc::Receiver<String>,
    /// Every stderr line so far.
    log: Arc<Mutex<String>>,
}

/// `budgit serve --listen 127.0.0.1:0 --db DB` with a cleared environment but `NO_COLOR`,
/// ready for more flags and variables.
pub fn command(db: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budgit"));
    with_serve_args(&mut cmd, db);
    cmd
}

/// Adds the serve arguments and the cleared environment to `cmd` (the binary, or a shell
/// that runs it).
pub fn with_serve_args(cmd: &mut Command, db: &Path) {
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"]).arg(db);
    cmd.env_clear().env("NO_COLOR", "1");
}

/// Starts the service on `db` with `admin` as its admin token.
pub fn serve(db: &Path, admin: &str) -> Serve {
    let mut cmd = command(db);
    cmd.env("BUDGIT_ADMIN_TOKEN", admin);
    Serve::start(cmd)
}

impl Serve {
    /// Spawns `cmd` (a `budgit serve` with `--listen 127.0.0.1:0`) and waits for the address
    /// it listens on, in a text or a JSON log line.
    pub fn start(mut cmd: Command) -> Serve {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let pipe = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let (line_tx, lines) = mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(addr) = listening(&line) {
                    let _ = addr_tx.send(addr);
                }
                kept.lock().unwrap().push_str(&format!("{line}\n"));
                // nobody reading the lines is fine: the log keeps them
                let _ = line_tx.send(line);
            }
        });
        let addr = match addr_rx.recv_timeout(START) {
            Ok(addr) => addr,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`budgit serve` did not start ({e}); it printed:\n{}", log.lock().unwrap());
            }
        };
        Serve { child, addr, lines, log }
    }

    /// Every stderr line so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for a stderr line starting with `prefix` and returns it.
    pub fn wait_for_line(&self, prefix: &str) -> String {
        loop {
            let line = self.lines.recv_timeout(START).unwrap_or_else(|e| panic!("no `{prefix}…` ({e})"));
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// SIGKILL (no shutdown path runs), then everything it printed on stderr.
    pub fn kill9(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.stderr()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in a listening line: the text line itself, or the `message` of a JSON one.
fn listening(line: &str) -> Option<SocketAddr> {
    let at = line.find(LISTENING)? + LISTENING.len();
    let rest = &line[at..];
    let end = rest.find(|c: char| c == '"' || c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A loopback port nothing listens on at the moment (bound, then released): for a process
/// that must be told its port before it starts (a script, the image's command).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
