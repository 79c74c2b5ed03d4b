//! From an upload's bytes to sheet rows: the bytes arrive as async messages, the sheet readers
//! are synchronous, so a blocking task reads (a CSV file as its bytes come, streaming; an XLSX
//! workbook once it is whole, from a temporary file, since a zip is read from its end) and
//! hands rows back through a bounded channel: a slow writer slows the reader, and memory stays
//! flat whatever the file's size.
//!
//! Memory per import is bounded whatever the file: the readers hold every file to
//! `xueji_sheets::Limits::default()` (rows of at most 16 KiB, cells cut at 1 KiB, XLSX parts
//! decompressed once and counted before the workbook opens, shared strings at most 256 MiB and
//! 4 million), and at most `ROW_BUFFER` rows wait between reader and writer (64 MiB at most).
//! The upload itself is bounded by `UploadLimits`: its size, its idle time, and how many
//! imports a node reads at once.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use xueji_sheets::{Encoding, Format, Limits, Row, SheetError};

/// Rows waiting between the reader and the writer: with rows of at most 16 KiB, at most 64 MiB.
const ROW_BUFFER: usize = 4_096;

/// What one node accepts of uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Bytes of one upload.
    pub max_bytes: u64,
    /// The longest pause between two messages of an upload.
    pub idle: std::time::Duration,
    /// Imports read at once.
    pub at_once: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 2048 << 20,
            idle: std::time::Duration::from_secs(60),
            at_once: 2,
        }
    }
}
/// Byte messages waiting between the upload and the reader.
const BYTE_BUFFER: usize = 16;

/// What the reader found once the file ended.
#[derive(Debug, Clone)]
pub struct ReadEnd {
    pub sha256: String,
    pub size: u64,
    pub encoding: Option<Encoding>,
}

/// The reader's side of an upload.
#[derive(Debug)]
pub struct SheetRows {
    pub rows: mpsc::Receiver<Row>,
    /// Answers once the reader stopped: how the file ended, or why it could not be read.
    pub end: tokio::task::JoinHandle<Result<ReadEnd, SheetError>>,
}

/// The upload's side: push the file's bytes in order, then drop it.
#[derive(Debug)]
pub struct ByteSink {
    bytes: std::sync::mpsc::SyncSender<Result<Vec<u8>, String>>,
}

impl ByteSink {
    /// Hands the next bytes to the reader; false once the reader stopped (it found the file
    /// unreadable, or the writer stopped taking rows).
    pub async fn push(&self, chunk: Vec<u8>) -> bool {
        let bytes = self.bytes.clone();
        tokio::task::spawn_blocking(move || bytes.send(Ok(chunk)).is_ok())
            .await
            .unwrap_or(false)
    }

    /// Stops the upload for `reason`: the reader fails the file with it.
    pub async fn fail(self, reason: String) {
        let bytes = self.bytes;
        let _ = tokio::task::spawn_blocking(move || bytes.send(Err(reason))).await;
    }
}

/// Starts reading a sheet of `format` from the bytes pushed into the answered sink.
pub fn start(format: Format) -> (ByteSink, SheetRows) {
    let (bytes_tx, bytes_rx) =
        std::sync::mpsc::sync_channel::<Result<Vec<u8>, String>>(BYTE_BUFFER);
    let (rows_tx, rows_rx) = mpsc::channel(ROW_BUFFER);
    let end = tokio::task::spawn_blocking(move || {
        let mut source = Hashing {
            chunks: bytes_rx,
            current: Vec::new(),
            at: 0,
            hasher: Sha256::new(),
            size: 0,
        };
        let mut each = |row: Row| rows_tx.blocking_send(row).is_ok();
        let encoding = match format {
            Format::Csv => Some(xueji_sheets::read_csv_with(
                &mut source,
                None,
                &Limits::default(),
                &mut each,
            )?),
            Format::Xlsx => {
                let mut file = tempfile::tempfile()?;
                std::io::copy(&mut source, &mut file)?;
                file.flush()?;
                use std::io::Seek;
                file.rewind()?;
                xueji_sheets::read_xlsx_with(
                    std::io::BufReader::new(file),
                    &Limits::default(),
                    &mut each,
                )?;
                None
            }
        };
        // Whatever the reader left unread still counts towards the file's digest.
        std::io::copy(&mut source, &mut std::io::sink())?;
        Ok(ReadEnd {
            sha256: hex::encode(source.hasher.finalize()),
            size: source.size,
            encoding,
        })
    });
    (
        ByteSink { bytes: bytes_tx },
        SheetRows { rows: rows_rx, end },
    )
}

/// The pushed bytes as one `Read`, hashed as they pass.
struct Hashing {
    chunks: std::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    current: Vec<u8>,
    at: usize,
    hasher: Sha256,
    size: u64,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(Err(reason)) => return Err(std::io::Error::other(reason)),
                Ok(Ok(chunk)) => {
                    self.hasher.update(&chunk);
                    self.size += chunk.len() as u64;
                    self.current = chunk;
                    self.at = 0;
                }
                // The upload ended.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
