//! A TCP relay that delays everything it forwards, in both directions, by a fixed time: a
//! link with latency. A close (FIN or reset) is forwarded with the same delay, so a server's
//! close can be "in flight" while the client already sends its next request.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the relay forwards: bytes, or the end of one direction.
enum Item {
    Data(Vec<u8>),
    /// The sender closed cleanly: shut down the writing side.
    Fin,
    /// The sender's side failed (reset): close the other connection both ways.
    Reset,
}

/// One direction's queue of items with the time each may be delivered.
#[derive(Default)]
struct Queue {
    items: Mutex<VecDeque<(Instant, Item)>>,
    ready: Condvar,
}

impl Queue {
    fn push(&self, at: Instant, item: Item) {
        self.items.lock().unwrap().push_back((at, item));
        self.ready.notify_one();
    }

    /// The next item, once its time has come.
    fn pop(&self) -> Item {
        let mut items = self.items.lock().unwrap();
        loop {
            match items.front() {
                Some((at, _)) if *at <= Instant::now() => {
                    return items.pop_front().unwrap().1;
                }
                Some((at, _)) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    items = self.ready.wait_timeout(items, wait).unwrap().0;
                }
                None => items = self.ready.wait(items).unwrap(),
            }
        }
    }
}

/// A relay on 127.0.0.1 in front of `upstream`.
pub struct DelayRelay {
    pub addr: SocketAddr,
    /// Client connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl DelayRelay {
    pub fn start(upstream: SocketAddr, one_way_delay: Duration) -> DelayRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let relay = DelayRelay {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            stop: Arc::default(),
        };
        let (connections, stop) = (relay.connections.clone(), relay.stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                };
                connections.fetch_add(1, Ordering::SeqCst);
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                pump(&client, &server, one_way_delay);
                pump(&server, &client, one_way_delay);
            }
        });
        relay
    }

    pub fn https_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Forwards `from` to `to` with a delay: one thread reads and stamps, one delivers.
fn pump(from: &TcpStream, to: &TcpStream, delay: Duration) {
    let queue = Arc::new(Queue::default());
    let (mut reader, mut writer) = (from.try_clone().unwrap(), to.try_clone().unwrap());
    let inbox = queue.clone();
    thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let item = match reader.read(&mut buf) {
                Ok(0) => Item::Fin,
                Ok(n) => Item::Data(buf[..n].to_vec()),
                Err(_) => Item::Reset,
            };
            let last = !matches!(item, Item::Data(_));
            inbox.push(Instant::now() + delay, item);
            if last {
                return;
            }
        }
    });
    thread::spawn(move || loop {
        match queue.pop() {
            Item::Data(bytes) => {
                if writer.write_all(&bytes).is_err() {
                    // The receiver is gone; the other direction's pump reads that and
                    // passes the close on to the sender, with the delay.
                    return;
                }
            }
            Item::Fin => {
                let _ = writer.shutdown(Shutdown::Write);
                return;
            }
            Item::Reset => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
    });
}
