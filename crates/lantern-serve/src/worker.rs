//! The one thread that runs the model: it takes jobs from a bounded queue and decodes every
//! running row together ([`ManyGenerator`]), admitting new jobs between steps (continuous
//! batching). Each job's events go back to its HTTP handler over a channel; a closed channel
//! (the client went away) stops the job's rows at their next token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use lantern_engine::generate_many::{Control, ManyGenerator, RowId, TokenEvent, TokenLogprob};
use lantern_engine::{LoadedModel, RowOutput, RowSpec};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// What a handler hears about its job.
#[derive(Debug)]
pub enum Event {
    /// A new token of row `row` (the job's own numbering).
    Token {
        row: usize,
        delta: String,
        token: TokenLogprob,
    },
    /// Every row finished; outputs in the job's row order.
    Done(Vec<RowOutput>),
    Failed(String),
}

/// A request's rows (its prompts × `n`).
pub struct Job {
    pub rows: Vec<RowSpec>,
    events: UnboundedSender<Event>,
}

/// The handlers' side of the worker.
#[derive(Clone)]
pub struct WorkerHandle {
    queue: SyncSender<Job>,
    running: Arc<AtomicUsize>,
}

/// Why a job was not queued.
pub enum SubmitError {
    Full,
    Closed,
}

impl WorkerHandle {
    /// Rows being decoded now.
    pub fn running_rows(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Queues a job without waiting; its events arrive on the returned receiver.
    pub fn submit(
        &self,
        rows: Vec<RowSpec>,
    ) -> std::result::Result<UnboundedReceiver<Event>, SubmitError> {
        let (events, rx) = unbounded_channel();
        match self.queue.try_send(Job { rows, events }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(SubmitError::Full),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Closed),
        }
    }
}

/// Starts the worker thread. It ends when every [`WorkerHandle`] is dropped and the queue and
/// running rows are drained.
pub fn start(
    lm: Arc<LoadedModel>,
    max_batch: usize,
    queue: usize,
) -> (WorkerHandle, JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(queue.max(1));
    let running = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&running);
    let thread = std::thread::Builder::new()
        .name("lantern-serve-model".into())
        .spawn(move || run(&lm, max_batch.max(1), rx, &counter))
        .expect("spawning the model thread");
    (WorkerHandle { queue: tx, running }, thread)
}

/// A job being run: where its events go and which rows are done.
struct Running {
    events: UnboundedSender<Event>,
    outputs: Vec<Option<RowOutput>>,
}

/// Row ids carry their job: `job << 20 | row`.
const ROW_BITS: u32 = 20;

fn run(lm: &LoadedModel, max_batch: usize, rx: Receiver<Job>, running: &AtomicUsize) {
    let mut gen = ManyGenerator::new(&lm.model, &lm.tokenizer);
    let mut jobs: HashMap<u64, Running> = HashMap::new();
    let mut next_job: u64 = 0;
    let mut closed = false;
    loop {
        // Take new jobs: wait for one when idle, else only those already queued.
        let mut incoming = Vec::new();
        let mut rows = gen.len();
        if gen.is_empty() {
            if closed {
                return;
            }
            match rx.recv() {
                Ok(job) => {
                    rows += job.rows.len();
                    incoming.push(job);
                }
                Err(_) => return,
            }
        }
        while rows < max_batch {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.rows.len();
                    incoming.push(job);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let mut specs_of = Vec::new();
        for job in incoming {
            if job.events.is_closed() {
                continue; // the client left while queued
            }
            let id = next_job;
            next_job += 1;
            let mut specs = job.rows;
            for (k, s) in specs.iter_mut().enumerate() {
                s.id = (id << ROW_BITS) | k as u64;
            }
            jobs.insert(
                id,
                Running {
                    events: job.events,
                    outputs: vec![None; specs.len()],
                },
            );
            specs_of.push((id, specs));
        }
        if !specs_of.is_empty() {
            admit(&mut gen, &mut jobs, specs_of);
        }
        running.store(gen.len(), Ordering::Relaxed);
        if gen.is_empty() {
            continue;
        }
        let result = gen.step(&mut |e| route(&jobs, e));
        running.store(gen.len(), Ordering::Relaxed);
        match result {
            Ok(done) => record(&mut jobs, done),
            Err(e) => {
                // A failed shared pass fails every running job (each had been validated).
                let message = format!("generation failed: {e}");
                gen.cancel_all();
                for (_, job) in jobs.drain() {
                    let _ = job.events.send(Event::Failed(message.clone()));
                }
            }
        }
    }
}

/// Prefills new jobs together; if the shared pass fails, each job is tried alone so that only
/// the one at fault fails.
fn admit(
    gen: &mut ManyGenerator,
    jobs: &mut HashMap<u64, Running>,
    specs_of: Vec<(u64, Vec<RowSpec>)>,
) {
    let all: Vec<RowSpec> = specs_of.iter().flat_map(|(_, s)| s.clone()).collect();
    match gen.admit(all, &mut |e| route(jobs, e)) {
        Ok(done) => record(jobs, done),
        Err(_) if specs_of.len() > 1 => {
            for (id, specs) in specs_of {
                match gen.admit(specs, &mut |e| route(jobs, e)) {
                    Ok(done) => record(jobs, done),
                    Err(e) => fail(jobs, id, &e),
                }
            }
        }
        Err(e) => fail(jobs, specs_of[0].0, &e),
    }
}

fn fail(jobs: &mut HashMap<u64, Running>, id: u64, e: &lantern_engine::Error) {
    if let Some(job) = jobs.remove(&id) {
        let _ = job.events.send(Event::Failed(e.to_string()));
    }
}

fn split(row: RowId) -> (u64, usize) {
    (row >> ROW_BITS, (row & ((1 << ROW_BITS) - 1)) as usize)
}

/// Sends a token to its job's handler; a closed channel stops the row.
fn route(jobs: &HashMap<u64, Running>, e: &TokenEvent) -> Control {
    let (job, row) = split(e.row);
    let Some(job) = jobs.get(&job) else {
        return Control::Stop;
    };
    let event = Event::Token {
        row,
        delta: e.text_delta.to_string(),
        token: e.token.clone(),
    };
    match job.events.send(event) {
        Ok(()) => Control::Continue,
        Err(_) => Control::Stop,
    }
}

/// Files finished rows; a job whose rows are all done gets its outputs.
fn record(jobs: &mut HashMap<u64, Running>, done: Vec<RowOutput>) {
    for out in done {
        let (id, row) = split(out.id);
        let Some(job) = jobs.get_mut(&id) else {
            continue;
        };
        job.outputs[row] = Some(out);
        if job.outputs.iter().all(Option::is_some) {
            let job = jobs.remove(&id).expect("present");
            let outputs = job.outputs.into_iter().flatten().collect();
            let _ = job.events.send(Event::Done(outputs));
        }
    }
}
