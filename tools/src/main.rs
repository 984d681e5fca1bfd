//! `mnnn`: list, inspect, train, evaluate and run memory-native models from the terminal.

mod alloc;
mod chart;
mod cmd;
mod interrupt;
mod progress;
mod table;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

// Named so the linker keeps every plugin's registration (see mnnn-zoo's docs).
use mnnn_zoo as _;
// Counts heap bytes so `mnnn conformance` can see a model whose memory grows and `mnnn
// compare` can read each run's own peak.
#[global_allocator]
static ALLOC: alloc::PeakAllocator = alloc::PeakAllocator;

/// Memory-native neural networks: pick a model by name, train it, compare it, run it.
#[derive(Parser, Debug)]
#[command(name = "mnnn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every zoo entry and preset: name, family, summary, state size and parameter count at
    /// defaults (a preset at its own params).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The model card of one entry or preset: summary, citation, params, tensors,
    /// diagnostics.
    Info {
        /// Entry or preset name (see `mnnn list`).
        name: String,
        /// Input width to size the tensors with.
        #[arg(long, default_value_t = 1)]
        inputs: usize,
        /// Output width to size the tensors with.
        #[arg(long, default_value_t = 1)]
        outputs: usize,
    },
    /// Train a model from a RON config (without --config: AMRC on a built-in series whose
    /// target depends on earlier inputs, against a memoryless linear regression).
    Train {
        /// The run config: `(model: "amrc", params: (...), data: Csv(...), train: (...))`, a
        /// preset file (`zoo/presets/*.ron`) or a config naming a preset.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A CSV file to train on instead of the config's `data:` (so a preset file, which
        /// names no data, trains as it is); with `--inputs` and `--targets`.
        #[arg(long, requires_all = ["config", "inputs", "targets"])]
        data: Option<PathBuf>,
        /// Input columns of `--data`.
        #[arg(long, value_delimiter = ',', requires = "data")]
        inputs: Vec<String>,
        /// Target columns of `--data`.
        #[arg(long, value_delimiter = ',', requires = "data")]
        targets: Vec<String>,
        /// A column of `--data` whose changes of value start a new sequence.
        #[arg(long, requires = "data")]
        sequence: Option<String>,
        /// Where to write the trained model (safetensors).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the final metrics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare entries or presets on a benchmark task or a CSV file: the same data, budget
    /// and learning-rate search for each; a table, and compare.jsonl and compare.csv written
    /// as each run finishes, compare.json and compare.svg at the end (Ctrl-C prints and
    /// writes what finished; `--resume` picks up from there). With no arguments: every entry
    /// on delayed recall over delays 1–32 (roughly 25 minutes on two cores, most of it
    /// training MNEMOSYNE; `--seeds 1 --budget-steps 50` takes under a minute). The runs are
    /// independent and train side by side on every core; `train tok/s`, `infer tok/s` and
    /// `peak MiB` come from one short run of each entry timed alone, its peak heap measured
    /// from a mark reset for that run.
    Compare {
        /// Entry or preset names (see `mnnn list`; all entries when none are given; `linear`
        /// is always included).
        names: Vec<String>,
        /// Compare every entry.
        #[arg(long)]
        all: bool,
        /// The task: sines, mackey-glass, delayed-recall, adding, selective-copying, mqar,
        /// mqar-basic (Zoology's basic configuration), passkey [default: delayed-recall].
        #[arg(long, conflicts_with = "csv")]
        task: Option<String>,
        /// The task's thorough settings (the passkey sweep up to 256K tokens).
        #[arg(long)]
        full: bool,
        /// Compare on a CSV file (with a header row) instead of a named task: with
        /// `--columns`, forecast those columns one step ahead; with `--inputs` and
        /// `--targets`, map the one to the other. The first 80% of the rows train and the
        /// rest is scored.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// The CSV columns to forecast, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            requires = "csv",
            conflicts_with = "inputs"
        )]
        columns: Vec<String>,
        /// The CSV input columns, comma-separated (with `--targets`).
        #[arg(long, value_delimiter = ',', requires_all = ["csv", "targets"])]
        inputs: Vec<String>,
        /// The CSV target columns, comma-separated (with `--inputs`).
        #[arg(long, value_delimiter = ',', requires_all = ["csv", "inputs"])]
        targets: Vec<String>,
        /// Seeds per entry.
        #[arg(long, default_value_t = 3)]
        seeds: usize,
        /// Parameter updates per training run (default 1000).
        #[arg(long, conflicts_with = "budget_seconds")]
        budget_steps: Option<usize>,
        /// Seconds per training run.
        #[arg(long)]
        budget_seconds: Option<f64>,
        /// The directory compare.jsonl, compare.csv, compare.json and compare.svg go to.
        #[arg(long, default_value = "compare-out")]
        out: PathBuf,
        /// Keep the runs already in `--out`'s compare.jsonl (same task, budget and learning
        /// rates) and run only the rest.
        #[arg(long)]
        resume: bool,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Throughput (batched step, chunked form, full-BPTT training) and state size per entry,
    /// and peak memory while streaming ever longer, to show it stays flat. Every model is
    /// built with 16 inputs and 4 outputs, so its parameter count is larger than `mnnn
    /// list`'s (1 input, 1 output).
    Bench {
        /// Entry names (all entries when none are given).
        names: Vec<String>,
        /// Measure every entry.
        #[arg(long)]
        all: bool,
        /// Hidden widths, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "32,128,512")]
        hidden: Vec<usize>,
        /// Batch sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        batch: Vec<usize>,
        /// Sequence length of the speed measurements.
        #[arg(long, default_value_t = 256)]
        len: usize,
        /// Stream lengths at which peak memory is read, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1024,16384,262144")]
        stream: Vec<usize>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the conformance suite: a table of entries × properties, FAIL with the smallest
    /// counterexample; exits 1 when anything fails.
    Conformance {
        /// Entry names (all entries when none are given).
        names: Vec<String>,
        /// Check every entry.
        #[arg(long)]
        all: bool,
        /// Proptest cases per property (more is more thorough; at least 1).
        #[arg(long, default_value_t = mnnn_conformance::DEFAULT_CASES,
              value_parser = clap::value_parser!(u32).range(1..))]
        cases: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read a model saved by another implementation into an mnnn model file: a reference
    /// implementation's file (with `compat: "reference"`, so it computes what it computed
    /// there; sizes given), or a PyTorch `nn.LSTM` / `nn.GRU` with an `nn.Linear` head saved
    /// with `safetensors.torch.save_file` (sizes from the shapes).
    Import {
        /// Whose file it is.
        #[arg(long, value_enum)]
        from: Source,
        /// The entry it becomes (reference: amrc, pmrc, amn, dtpn; torch: lstm, gru).
        #[arg(long)]
        model: String,
        /// Input width I the file was written with (reference files).
        #[arg(long, required_if_eq("from", "reference"))]
        input: Option<usize>,
        /// Hidden width H (reference files).
        #[arg(long, required_if_eq("from", "reference"))]
        hidden: Option<usize>,
        /// Output width O (reference files).
        #[arg(long, required_if_eq("from", "reference"))]
        output: Option<usize>,
        /// Manifold / memory-matrix rows M (AMN, DTPN).
        #[arg(long)]
        manifold: Option<usize>,
        /// The file to read.
        file: PathBuf,
        /// Where to write the mnnn model.
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a saved model on a CSV file (each sequence from a fresh memory).
    Eval {
        #[command(flatten)]
        run: ModelOnCsv,
        /// Target columns, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        targets: Vec<String>,
        /// A column whose changes of value start a new sequence.
        #[arg(long)]
        sequence: Option<String>,
        /// Score from the memory saved in the model file (as a forecaster that has seen the
        /// past scores) instead of from a fresh state.
        #[arg(long)]
        warm: bool,
        /// Warm, after first running the model over this CSV file's input columns.
        #[arg(long)]
        history: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a saved model over a CSV file from its saved memory and print predictions as CSV.
    Predict {
        #[command(flatten)]
        run: ModelOnCsv,
        /// Save the model with its advanced memory here, so the stream can be resumed.
        #[arg(long)]
        state_out: Option<PathBuf>,
        /// Target columns, comma-separated: score the predictions against them (on stderr).
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
    },
}

/// Implementations `mnnn import` reads.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Source {
    /// The reference C/Python implementation of the MNNN family.
    Reference,
    /// PyTorch: an `nn.LSTM` or `nn.GRU` `state_dict` plus `head.weight` and `head.bias`.
    Torch,
}

/// A saved model and the CSV file it reads.
#[derive(Args, Debug)]
struct ModelOnCsv {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// The CSV file (with a header row).
    #[arg(long)]
    data: PathBuf,
    /// Input columns, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    inputs: Vec<String>,
}

/// A failure and the exit code it maps to.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A failure (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<mnnn_core::Error> for Failure {
    fn from(e: mnnn_core::Error) -> Self {
        let code = match e {
            // What the user asked for is wrong (a name, a config, a size or range), as
            // opposed to data or a file that could not be read or used.
            mnnn_core::Error::UnknownModel { .. }
            | mnnn_core::Error::Config { .. }
            | mnnn_core::Error::InvalidParam { .. }
            | mnnn_core::Error::TooLarge { .. } => 2,
            _ => 1,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    // A reader that goes away (`mnnn list | head`) ends the program quietly, as it ends any
    // Unix filter: Rust starts programs with SIGPIPE ignored, which turns that into a panic
    // in `println!`. Files are never written through a pipe, so no save is cut short by it.
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // An interrupted save must not leave its temporary file behind (up to a model's size).
    // If the handler cannot be installed the commands still work; only that clean-up is lost.
    let _ = ctrlc::set_handler(|| {
        mnnn_core::tempfiles::remove_all();
        eprintln!("interrupted");
        std::process::exit(130);
    });
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List { json } => cmd::list::run(json),
        Command::Info {
            name,
            inputs,
            outputs,
        } => cmd::info::run(&name, inputs, outputs),
        Command::Train {
            config,
            data,
            inputs,
            targets,
            sequence,
            out,
            json,
        } => {
            let data = data.map(|path| mnnn_core::config::DataSpec::Csv {
                path,
                inputs,
                targets,
                sequence,
                horizon: 0,
                difference: false,
                missing: Default::default(),
            });
            cmd::train::run(config.as_deref(), data, out.as_deref(), json)
        }
        Command::Import {
            from: Source::Reference,
            model,
            input,
            hidden,
            output,
            manifold,
            file,
            out,
        } => {
            // clap requires the three sizes for reference files.
            let dims = mnnn_core::reference::RefDims {
                input: input.unwrap_or_default(),
                hidden: hidden.unwrap_or_default(),
                output: output.unwrap_or_default(),
                manifold,
            };
            cmd::import::run(&model, dims, &file, &out)
        }
        Command::Import {
            from: Source::Torch,
            model,
            file,
            out,
            ..
        } => cmd::import::run_torch(&model, &file, &out),
        Command::Compare {
            names,
            all,
            task,
            full,
            csv,
            columns,
            inputs,
            targets,
            seeds,
            budget_steps,
            budget_seconds,
            out,
            resume,
            json,
        } => {
            let names = if all { Vec::new() } else { names };
            cmd::compare::run(cmd::compare::Args {
                names: &names,
                task: task.as_deref().unwrap_or("delayed-recall"),
                csv: csv.as_deref().map(|path| cmd::compare::CsvTask {
                    path,
                    columns: &columns,
                    inputs: &inputs,
                    targets: &targets,
                }),
                full,
                seeds,
                budget_steps,
                budget_seconds,
                out: &out,
                resume,
                json,
            })
        }
        Command::Bench {
            names,
            all,
            hidden,
            batch,
            len,
            stream,
            json,
        } => {
            let names = if all { Vec::new() } else { names };
            cmd::bench::run(&names, &hidden, &batch, len, &stream, json)
        }
        Command::Conformance {
            names,
            all,
            cases,
            json,
        } => cmd::conformance::run(&names, all, cases, json),
        Command::Eval {
            run,
            targets,
            sequence,
            warm,
            history,
            json,
        } => cmd::eval::run(
            &run.model,
            &run.data,
            &run.inputs,
            &targets,
            sequence.as_deref(),
            cmd::eval::Start::from_flags(warm, history.as_deref()),
            json,
        ),
        Command::Predict {
            run,
            state_out,
            targets,
        } => cmd::predict::run(
            &run.model,
            &run.data,
            &run.inputs,
            state_out.as_deref(),
            &targets,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
