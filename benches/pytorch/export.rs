//! Writes one of our MNEMOSYNE models (a `zoo/presets` configuration, f64, fixed seed) with
//! a batch of `mqar-basic` sequences and what our code computes on them — logits of the
//! batched (training) forward and of the streaming decode, the training loss and every
//! parameter's gradient — as JSON for `benches/pytorch/check.py`, which loads the same
//! weights into the PyTorch script's model and checks that it computes the same function.
//!
//! ```text
//! cargo run --release -p mnnn-tools --example torch_export -- mnemosyne-delta out.json [batch] [seed]
//! ```

use mnnn_core::{Dataset, Inputs, Result, Targets, Tensors};
use mnnn_zoo::tasks::Task;
use serde_json::{Value, json};

/// Every tensor of `t` as `{name, shape, data}`, in layout order.
fn tensors(t: &Tensors<f64>) -> Value {
    let list: Vec<Value> = t
        .layout()
        .entries()
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"name": e.name, "shape": e.shape, "data": t.slice(i)}))
        .collect();
    Value::Array(list)
}

fn run(preset: &str, out: &str, batch: usize, seed: u64) -> Result<()> {
    let text = mnnn_zoo::presets()
        .iter()
        .find(|(stem, _)| *stem == preset)
        .map(|(_, t)| *t)
        .ok_or_else(|| mnnn_core::Error::Data(format!("no preset named {preset}")))?;
    let rc = mnnn_core::config::parse(text, &format!("preset {preset}"))?;
    let data = Task::named("mqar-basic", false)?.generate(seed)?;
    let io = data.train.io.clone();
    let model = mnnn_zoo::create::<f64>(&rc.model, Some(&rc.params), &io, seed)?;
    let sequences: Vec<_> = data.train.sequences.iter().take(batch).cloned().collect();
    let inputs: Vec<Inputs<f64>> = sequences.iter().map(|s| s.inputs.clone()).collect();
    let (mut tokens, mut targets, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for s in &sequences {
        if let (Inputs::Tokens(x), Targets::Classes(y)) = (&s.inputs, &s.targets) {
            tokens.push(x.clone());
            targets.push(y.clone());
            mask.push(s.mask.clone().unwrap_or_else(|| vec![true; x.len()]));
        }
    }
    let flat = |outs: Vec<ndarray::Array2<f64>>| -> Vec<f64> {
        outs.iter().flat_map(|o| o.iter().copied()).collect()
    };
    let logits = flat(model.predict_batch(&inputs)?);
    let stream = flat(model.stream_batch(&inputs)?);
    let batch_data = Dataset { io, sequences };
    let (loss, grads) = model.gradients(&batch_data, None)?;
    let doc = json!({
        "preset": preset,
        "model": rc.model,
        "params_ron": rc.params,
        "seed": seed,
        "param_count": model.params().data().len(),
        "params": tensors(model.params()),
        "tokens": tokens,
        "targets": targets,
        "mask": mask,
        "logits": logits,
        "stream_logits": stream,
        "loss": loss,
        "grads": tensors(&grads.params),
    });
    let text = serde_json::to_string(&doc).map_err(|e| mnnn_core::Error::Data(e.to_string()))?;
    std::fs::write(out, text).map_err(|e| mnnn_core::Error::Data(format!("{out}: {e}")))?;
    eprintln!(
        "{preset}: {} parameters, loss {loss:.12}, written to {out}",
        model.params().data().len()
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: torch_export <preset> <out.json> [batch (12)] [seed (0)]");
        std::process::exit(2);
    }
    let batch = args.get(2).and_then(|b| b.parse().ok()).unwrap_or(12);
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    if let Err(e) = run(&args[0], &args[1], batch, seed) {
        eprintln!("torch_export: {e}");
        std::process::exit(1);
    }
}
