//! fws-echo: echo server on fastwebsockets, tokio current-thread runtime, written like the
//! crate's own echo example (FragmentCollector, one `write_frame` per message, unconstrained
//! task). The HTTP upgrade is answered by a small parser here instead of hyper, which keeps
//! the build light; it expects the client to wait for the 101 before sending frames.
//!
//!   fws-echo [HOST:PORT]     (default 127.0.0.1:0; prints "listening on ADDR")

use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn upgrade(stream: &mut TcpStream) -> std::io::Result<bool> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > 16384 {
            return Ok(false);
        }
    };
    if end + 4 != buf.len() {
        // Frames sent before the 101: not supported by this minimal upgrade.
        return Ok(false);
    }
    let head = String::from_utf8_lossy(&buf[..end]);
    let upgrade_ok = bench_common::header_value(&head, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = bench_common::header_value(&head, "sec-websocket-key");
    let (true, Some(key)) = (upgrade_ok && head.starts_with("GET "), key) else {
        stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
        return Ok(false);
    };
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        bench_common::accept_key(key)
    );
    stream.write_all(resp.as_bytes()).await?;
    Ok(true)
}

async fn serve(mut stream: TcpStream) -> Result<(), fastwebsockets::WebSocketError> {
    let _ = stream.set_nodelay(true);
    if !upgrade(&mut stream).await? {
        return Ok(());
    }
    let mut ws = WebSocket::after_handshake(stream, Role::Server);
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    ws.set_max_message_size(64 << 20);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await.unwrap_or_else(|e| {
            eprintln!("fws-echo: bind {addr}: {e}");
            std::process::exit(1)
        });
        println!("listening on {}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(tokio::task::unconstrained(async move {
                        let _ = serve(stream).await;
                    }));
                }
                Err(e) => {
                    eprintln!("fws-echo: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    });
}
