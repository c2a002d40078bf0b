//! A minimal keep-alive HTTP/1.1 client for the benchmarks that drive `budgit serve`.
//!
//! Hand-written so that what a benchmark times is the server, not a client
//! library's pooling or parsing; responses must carry `Content-Length`. A
//! request goes out in one write (head and body together), so the server sees
//! it in one segment; [`request_bytes`] and [`parse_response`] serve the
//! event-loop driver of W2h, [`Conn`] the blocking calls.

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
        let bytes = request_bytes(method, path, self.addr, token, body);
        self.reader.get_mut().write_all(&bytes)?;
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

/// A whole request, head and body, ready for one write.
pub fn request_bytes(method: &str, path: &str, host: SocketAddr, token: &str, body: &str) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// A complete response at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The status code.
    pub status: u16,
    /// Where the body is in the buffer.
    pub body: std::ops::Range<usize>,
}

/// Parses the response at the start of `buf`: `None` until it is complete.
pub fn parse_response(buf: &[u8]) -> anyhow::Result<Option<Parsed>> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            anyhow::bail!("a response head longer than 64 KiB");
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("a response head that is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let status: u16 = first
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line `{first}`"))?;
    let len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .context("a response without `Content-Length`")?;
    let start = head_end + 4;
    if buf.len() < start + len {
        return Ok(None);
    }
    Ok(Some(Parsed { status, body: start..start + len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_only_when_complete() {
        let full =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\n{}{}HTTP/1.1";
        let half_body = &full[..full.len() - 10];
        assert_eq!(parse_response(&full[..10]).unwrap(), None);
        assert_eq!(parse_response(half_body).unwrap(), None);
        let p = parse_response(full).unwrap().unwrap();
        assert_eq!((p.status, &full[p.body.clone()]), (200, &b"{}{}"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn a_request_is_one_buffer() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let r = String::from_utf8(request_bytes("POST", "/v1/check", addr, "t", "{}")).unwrap();
        assert!(r.starts_with("POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"), "{r}");
        assert!(r.ends_with("Content-Length: 2\r\n\r\n{}"), "{r}");
    }
}
