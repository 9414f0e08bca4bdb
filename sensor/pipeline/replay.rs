//! Replaying capture files through the pipeline.
//!
//! Contract: [`run`] reads every input in order (a path, or `-` for standard input), pushes its
//! packets through one [`Pipeline`], and returns what each input yielded plus the collector and
//! counters. An input that cannot be opened or is damaged is recorded with its error and the
//! run goes on with the next one: nothing decoded before the damage is lost.

use std::io::IsTerminal;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::capture::digest::DigestOptions;
use crate::capture::file::{FileOptions, FileSource, FileStats};
use crate::capture::segmented::SegmentedPcap;
use crate::capture::SourceStatus;
use crate::flow::WorkerCounters;
use crate::output::report::InputSummary;
use crate::pipeline::{Collector, Pipeline, PipelineConfig};

/// Packets asked of a source per call.
const READ_CHUNK: usize = 4096;
/// How often the progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// The outcome of a replay.
pub struct ReplayOutcome {
    pub inputs: Vec<InputSummary>,
    pub collector: Collector,
    pub counters: WorkerCounters,
}

impl ReplayOutcome {
    /// Whether every input was read to its end without damage.
    pub fn inputs_clean(&self) -> bool {
        self.inputs.iter().all(|i| i.error.is_none())
    }
}

/// Opens an input; its reader hashes what it reads (`capture::digest`).
fn open(name: &str, index: u16, digest: DigestOptions) -> Result<FileSource, String> {
    let options = FileOptions { digest };
    let source = if name == "-" {
        FileSource::from_reader_with(Box::new(std::io::stdin()), index, options)
    } else {
        FileSource::open_with(Path::new(name), index, options)
    };
    source.map_err(|e| e.to_string())
}

struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        let now = Instant::now();
        Progress {
            enabled: enabled && std::io::stderr().is_terminal(),
            started: now,
            last: now,
            drawn: false,
        }
    }

    fn tick(&mut self, packets: u64, bytes: u64, files_done: usize, files: usize) {
        if !self.enabled || self.last.elapsed() < PROGRESS_INTERVAL {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{packets} packets, {:.1} MB, {:.0} packets/s, files {files_done}/{files}   ",
            bytes as f64 / 1e6,
            packets as f64 / secs
        );
        self.drawn = true;
    }

    fn done(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// How inputs are read.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// Draw a progress line on a terminal.
    pub progress: bool,
    /// Which hashes of each input the report carries (the first and last MiB always).
    pub digest: DigestOptions,
}

/// Copies what a file's statistics say into its summary.
fn fill_summary(summary: &mut InputSummary, stats: &FileStats) {
    summary.packets = stats.packets;
    summary.captured_bytes = stats.captured_bytes;
    summary.file_bytes = stats.bytes_read;
    summary.first_ts = stats.earliest_ts;
    summary.last_ts = stats.latest_ts;
    summary.notes = stats
        .skipped
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(l, n)| (l.to_string(), n))
        .collect();
}

/// Replays `inputs` in order.
pub fn run(
    inputs: &[String],
    config: &PipelineConfig,
    collector: Collector,
    read: ReadOptions,
) -> ReplayOutcome {
    let mut pipeline = Pipeline::new(config, collector);
    let mut summaries = Vec::new();
    let mut progress = Progress::new(read.progress);
    let mut bytes_read = 0u64;
    for (index, name) in inputs.iter().enumerate() {
        let mut summary = InputSummary {
            name: name.clone(),
            ..InputSummary::default()
        };
        let index = u16::try_from(index).unwrap_or(u16::MAX);
        // With worker threads, a classic pcap file is read by the workers themselves.
        let segmented = if pipeline.is_threaded() && name != "-" {
            SegmentedPcap::open(Path::new(name), index)
        } else {
            None
        };
        if let Some(file) = segmented {
            let done_before = bytes_read;
            let mut tick = |packets: u64| {
                progress.tick(packets, done_before, index as usize, inputs.len());
            };
            // With worker threads the file is always taken.
            if let Ok(outcome) = pipeline.replay_file(file, read.digest, &mut tick) {
                bytes_read += outcome.stats.bytes_read;
                summary.error = outcome.error.map(|e| e.to_string());
                summary.set_digests(&outcome.digests);
                fill_summary(&mut summary, &outcome.stats);
                summaries.push(summary);
                pipeline.drain();
                continue;
            }
        }
        let mut source = match open(name, index, read.digest) {
            Ok(source) => source,
            Err(e) => {
                summary.error = Some(e);
                summaries.push(summary);
                continue;
            }
        };
        loop {
            let status = source.read_lent(READ_CHUNK, &mut |meta, data, chunk| {
                pipeline.push_shared(meta, data, chunk)
            });
            progress.tick(
                pipeline.packets(),
                bytes_read + source.stats().bytes_read,
                index as usize,
                inputs.len(),
            );
            match status {
                Ok(SourceStatus::More) | Ok(SourceStatus::Idle) => continue,
                Ok(SourceStatus::End) => break,
                Err(e) => {
                    summary.error = Some(e.to_string());
                    break;
                }
            }
        }
        let stats = source.stats();
        bytes_read += stats.bytes_read;
        fill_summary(&mut summary, stats);
        summary.set_digests(&source.digests());
        summaries.push(summary);
        // Observations of this input are applied before the next input starts.
        pipeline.drain();
    }
    progress.done();
    let (collector, counters) = pipeline.finish();
    ReplayOutcome {
        inputs: summaries,
        collector,
        counters,
    }
}
