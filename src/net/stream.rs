//! Lines over a byte stream (TCP, TLS): read into a buffer and framed by
//! their endings, written many per system call straight from the shared
//! buffers.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::sync::CancellationToken;

use super::transport::{LineSink, LineSource};
use crate::proto::framing::{Frame, Framer};

/// The smallest and largest reads: small for the many idle clients, large
/// for a client sending a burst.
const READ_MIN: usize = 512;
const READ_MAX: usize = 64 * 1024;

/// The most lines one write call carries (Linux allows 1,024).
const WRITE_SLICES: usize = 128;

/// The read half of a byte stream, framed into lines.
pub(crate) struct StreamSource<R> {
    socket: R,
    buffer: ReadBuffer,
    framer: Framer,
}

impl<R> StreamSource<R> {
    /// Frames what `socket` gives, starting with a small buffer.
    pub(crate) fn new(socket: R) -> StreamSource<R> {
        StreamSource {
            socket,
            buffer: ReadBuffer::default(),
            framer: Framer::default(),
        }
    }
}

impl<R: AsyncRead + Unpin + Send> LineSource for StreamSource<R> {
    async fn fill(&mut self) -> std::io::Result<bool> {
        Ok(self.buffer.read_from(&mut self.socket).await? > 0)
    }

    fn next_frame(&mut self) -> Option<Frame> {
        let frame = self.framer.next_line(&mut self.buffer.bytes);
        if frame.is_none() {
            self.buffer.release_if_empty();
        }
        frame
    }
}

/// The write half of a byte stream: lines go out as they are, CR LF and all.
pub(crate) struct StreamSink<W>(pub W);

impl<W: AsyncWrite + Unpin + Send> LineSink for StreamSink<W> {
    async fn send(&mut self, lines: &mut Vec<Bytes>, stop: &CancellationToken) -> Result<(), ()> {
        write_lines(&mut self.0, lines, stop).await
    }

    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// The bytes read and not yet framed, and how much the next read may
/// take: more while reads fill it, less while they do not.
struct ReadBuffer {
    bytes: BytesMut,
    /// How much room the next read gets.
    read_size: usize,
}

thread_local! {
    /// Where a read lands before its bytes are copied to the connection's
    /// buffer: one per worker thread, as large as the largest read.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_MAX].into_boxed_slice());
}

impl Default for ReadBuffer {
    fn default() -> ReadBuffer {
        ReadBuffer {
            bytes: BytesMut::new(),
            read_size: READ_MIN,
        }
    }
}

impl ReadBuffer {
    /// Reads once from `socket`; 0 is the end of the stream. Cancel-safe:
    /// a read that has not completed leaves the buffer as it was.
    async fn read_from<R: AsyncRead + Unpin>(&mut self, socket: &mut R) -> std::io::Result<usize> {
        let mut socket = Pin::new(socket);
        let read = std::future::poll_fn(|cx| self.poll_read(socket.as_mut(), cx)).await?;
        self.adapt(read, self.read_size);
        Ok(read)
    }

    /// Reads into this thread's scratch buffer and keeps only what came,
    /// so a connection waiting for input holds no buffer of its own.
    fn poll_read<R: AsyncRead>(
        &mut self,
        socket: Pin<&mut R>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut room = ReadBuf::new(&mut scratch[..self.read_size]);
            match socket.poll_read(cx, &mut room) {
                Poll::Ready(Ok(())) => {
                    self.bytes.extend_from_slice(room.filled());
                    Poll::Ready(Ok(room.filled().len()))
                }
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            }
        })
    }

    /// Lets go of the buffer once every line in it was taken: an idle
    /// client keeps none between its lines.
    fn release_if_empty(&mut self) {
        if self.bytes.is_empty() && self.bytes.capacity() > 0 {
            self.bytes = BytesMut::new();
        }
    }

    /// Doubles the read size after a read that filled the room it had,
    /// halves it after one that used less than a quarter.
    fn adapt(&mut self, read: usize, spare: usize) {
        if read == spare {
            self.read_size = (self.read_size * 2).min(READ_MAX);
        } else if read < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(READ_MIN);
        }
    }
}

/// One write of the lines from `lines[0][offset..]` on. The slice array
/// lives on the stack of this call only: held across an await it would
/// make every idle connection's write task 2 KiB larger.
fn poll_write_lines<W: AsyncWrite>(
    writer: Pin<&mut W>,
    cx: &mut Context<'_>,
    lines: &[Bytes],
    offset: usize,
) -> Poll<std::io::Result<usize>> {
    // One line, the common case in a fan-out: no slice array to fill.
    if let [line] = lines {
        return writer.poll_write(cx, &line[offset..]);
    }
    let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
    let mut count = 0;
    for (i, line) in lines.iter().take(WRITE_SLICES).enumerate() {
        let skip = if i == 0 { offset } else { 0 };
        slices[i] = IoSlice::new(&line[skip..]);
        count += 1;
    }
    writer.poll_write_vectored(cx, &slices[..count])
}

/// Writes every line with vectored writes straight from the shared buffers:
/// no copy into a per-connection buffer, which idle clients would keep.
async fn write_lines<W: AsyncWrite + Unpin>(
    writer: &mut W,
    lines: &mut Vec<Bytes>,
    stop: &CancellationToken,
) -> Result<(), ()> {
    // The first unwritten line, and how much of it is already written.
    let (mut next, mut offset) = (0, 0);
    while next < lines.len() {
        let write = std::future::poll_fn(|cx| {
            poll_write_lines(Pin::new(&mut *writer), cx, &lines[next..], offset)
        });
        let mut written = tokio::select! {
            written = write => written.map_err(|_| ())?,
            _ = stop.cancelled() => return Err(()),
        };
        if written == 0 {
            return Err(());
        }
        while written > 0 {
            let left = lines[next].len() - offset;
            if written >= left {
                written -= left;
                next += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    lines.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts at most `max` bytes per write, to force partial writes.
    struct Trickle {
        written: Vec<u8>,
        max: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.written.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn partial_writes_send_every_byte_in_order() {
        let mut lines: Vec<Bytes> = (0..700)
            .map(|i| Bytes::from(format!("line {i}\r\n")))
            .collect();
        let expected: Vec<u8> = lines.iter().flat_map(|l| l.to_vec()).collect();
        let mut writer = Trickle {
            written: Vec::new(),
            max: 7,
        };
        let stop = CancellationToken::new();
        write_lines(&mut writer, &mut lines, &stop).await.unwrap();
        assert_eq!(writer.written, expected);
        assert!(lines.is_empty());
    }

    #[test]
    fn the_read_size_follows_the_reads_within_its_bounds() {
        let mut buffer = ReadBuffer::default();
        buffer.adapt(READ_MIN, READ_MIN);
        assert_eq!(buffer.read_size, 2 * READ_MIN);
        for _ in 0..20 {
            let full = buffer.read_size;
            buffer.adapt(full, full);
        }
        assert_eq!(buffer.read_size, READ_MAX);
        buffer.adapt(READ_MAX / 2, READ_MAX);
        assert_eq!(buffer.read_size, READ_MAX);
        for _ in 0..20 {
            buffer.adapt(1, READ_MAX);
        }
        assert_eq!(buffer.read_size, READ_MIN);
    }

    #[tokio::test]
    async fn a_source_holds_no_buffer_between_lines() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut source = StreamSource::new(server);
        assert_eq!(source.buffer.bytes.capacity(), 0);
        client.write_all(b"PING a\r\nPING").await.unwrap();
        assert!(source.fill().await.unwrap());
        assert_eq!(
            source.next_frame(),
            Some(Frame::Line(BytesMut::from("PING a")))
        );
        assert_eq!(source.next_frame(), None);
        // Half a line waits in the buffer for the rest.
        assert!(source.buffer.bytes.capacity() > 0);
        client.write_all(b" b\r\n").await.unwrap();
        assert!(source.fill().await.unwrap());
        assert_eq!(
            source.next_frame(),
            Some(Frame::Line(BytesMut::from("PING b")))
        );
        assert_eq!(source.next_frame(), None);
        assert_eq!(source.buffer.bytes.capacity(), 0);
    }
}
