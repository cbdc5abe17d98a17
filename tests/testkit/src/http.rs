//! A minimal HTTP/1.1 client on loopback: the emulator's own control API, the drill's shops.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends one request and returns the status code and body.
pub fn request(addr: SocketAddr, method: &str, path: &str, timeout: Duration) -> io::Result<(u16, String)> {
    send(addr, method, path, None, timeout)
}

/// Posts a form (`a=1&b=2`) and returns the status code and body.
pub fn post_form(addr: SocketAddr, path: &str, form: &str, timeout: Duration) -> io::Result<(u16, String)> {
    send(
        addr,
        "POST",
        path,
        Some(("application/x-www-form-urlencoded", form)),
        timeout,
    )
}

/// One request with an optional body (`content type`, text); `timeout` bounds the connect
/// and each read and write.
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
    timeout: Duration,
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let (content_type, text) = body.unwrap_or(("", ""));
    let content_type = if content_type.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {content_type}\r\n")
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
        io::Error::other(format!(
            "not an HTTP response: {:?}",
            response.chars().take(80).collect::<String>()
        ))
    })?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head
        .lines()
        .any(|line| line.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked { dechunk(body)? } else { body.to_owned() };
    Ok((status, body))
}

/// The body of a `Transfer-Encoding: chunked` response (nginx sends one for a PHP answer).
fn dechunk(mut rest: &str) -> io::Result<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| io::Error::other("a chunked body ended without its last chunk"))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::other(format!("not a chunk size: {size:?}")))?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| io::Error::other("a chunk is shorter than its size"))?;
        body.push_str(chunk);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::dechunk;

    #[test]
    fn a_chunked_body_is_joined_and_a_truncated_one_refused() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n").unwrap(),
            "hello world"
        );
        assert!(dechunk("5\r\nhel").is_err());
        assert!(dechunk("zz\r\n").is_err());
    }
}
