//! A listener survives running out of file descriptors: accept pauses, then resumes once
//! descriptors are free. Its own test binary, because it lowers the process's fd limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{DialOpts, RawTransport, RuntimeHandle};
use lp2p_tcp::TcpTransport;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(64, |d| d.count() as u64)
}

#[test]
#[cfg(target_os = "linux")]
fn listener_keeps_accepting_after_emfile() {
    let rt = RuntimeHandle::default();
    block_on(async {
        let tcp = TcpTransport::default();
        let mut listener = tcp
            .listen(&"/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr();
        let socket_addr = lp2p_tcp::multiaddr_to_socketaddr(&addr).unwrap();

        // Fill the descriptor table so the next accept fails with EMFILE.
        let original = getrlimit(Resource::Nofile);
        let mut hog = Vec::new();
        // Connect with std sockets first (each takes one fd here; the accepted side needs one more).
        let pending = std::net::TcpStream::connect(socket_addr).unwrap();
        let tight = Rlimit {
            current: Some(open_fds() + 2),
            maximum: original.maximum,
        };
        setrlimit(Resource::Nofile, tight).unwrap();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            hog.push(f);
        }

        // The accept cannot get a descriptor now: it must pause, not return an error.
        let accept = rt.spawn(async move {
            let mut conn = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).await.unwrap();
            conn.write_all(&buf).await.unwrap();
            listener
        });
        rt.sleep(Duration::from_millis(300)).await;

        // Free the descriptors: the paused accept resumes and serves the waiting connection.
        drop(hog);
        setrlimit(Resource::Nofile, original).unwrap();
        let mut pending = async_io::Async::new(pending).unwrap();
        pending.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        pending.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");

        // And the listener is still usable afterwards.
        let mut listener = rt
            .timeout(Duration::from_secs(60), accept)
            .await
            .unwrap()
            .unwrap();
        let _c = tcp.dial(&addr, &DialOpts::default()).await.unwrap();
        let _s = listener.accept().await.unwrap();
    });
}
