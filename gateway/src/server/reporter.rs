//! Messages to the pusher: human text on stderr (extended data 1), then an exit status.

use russh::server::Msg;
use russh::ChannelWriteHalf;

pub struct Reporter {
    writer: ChannelWriteHalf<Msg>,
    /// -1 quiet (errors and results only), 0 normal, >0 verbose.
    verbosity: i8,
}

impl Reporter {
    pub fn new(writer: ChannelWriteHalf<Msg>, verbosity: i8) -> Reporter {
        Reporter { writer, verbosity }
    }

    /// Always shown: results and errors.
    pub async fn line(&self, text: &str) {
        let mut data = text.as_bytes().to_vec();
        data.push(b'\n');
        let _ = self.writer.extended_data_bytes(1, data).await;
    }

    /// Progress and notes; hidden with -q.
    pub async fn info(&self, text: &str) {
        if self.verbosity >= 0 {
            self.line(text).await;
        }
    }

    pub async fn verbose(&self, text: &str) {
        if self.verbosity > 0 {
            self.line(text).await;
        }
    }

    /// stdout (for machine-readable output).
    pub async fn stdout(&self, data: Vec<u8>) {
        let _ = self.writer.data_bytes(data).await;
    }

    /// A byte stream onto stdout, for the native protocol's frames.
    pub fn stdout_writer(&self) -> std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>> {
        Box::pin(self.writer.make_writer())
    }

    /// exit-status → EOF → close, in that order, so OpenSSH reports the status.
    pub async fn finish(self, status: u32) {
        let _ = self.writer.exit_status(status).await;
        let _ = self.writer.eof().await;
        let _ = self.writer.close().await;
    }
}
