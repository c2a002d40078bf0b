//! A minimal keep-alive HTTP/1.1 client for the benchmarks that drive `budgit serve`.
//!
//! Hand-written so that what a benchmark times is the server, not a client
//! library's pooling or parsing; responses must carry `Content-Length`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context;

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects, with Nagle off and a read timeout.
    pub fn open(addr: SocketAddr, read_timeout: Duration) -> anyhow::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(read_timeout))?;
        Ok(Conn { addr, reader: BufReader::new(s) })
    }

    /// Sends a request with a bearer token and a JSON body; returns the status and the body bytes.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line `{line}`"))?;
        let mut len = None;
        for _ in 0..100 {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let len = len.context("a response without `Content-Length`")?;
        let mut buf = vec![0; len];
        self.reader.read_exact(&mut buf)?;
        Ok((status, buf))
    }
}
