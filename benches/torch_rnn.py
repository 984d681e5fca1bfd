"""PyTorch's side of the LSTM / GRU benchmark (`cargo bench -p mnnn-rnn`): the same work,
timed the same way.

nn.LSTM / nn.GRU with input 16, hidden 128, one layer, an nn.Linear read-out to 4 outputs,
batch 1 and 32, one window of 1024 steps (time-major): forward alone (under no_grad), and
forward + backward of the summed outputs (gradients of every weight and of the inputs).
Prints tokens/s (steps x sequences per second; the median of the repeats).

    python3 benches/torch_rnn.py --threads 1
    python3 benches/torch_rnn.py --threads 1 --cpu-time   # on a loaded machine

With --cpu-time the clock is the thread's on-CPU time (time.thread_time), which other work
on the machine inflates far less than the wall clock; it is what
`cargo run --release -p mnnn-rnn --example cpu_time` reads on our side. It only makes sense
with one thread.
"""

import argparse
import statistics
import time

import torch

STEPS, INPUT, HIDDEN, OUTPUT = 1024, 16, 128, 4


def bench(fn, repeats, clock):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--cpu-time", action="store_true", help="time by the thread's CPU time")
    args = ap.parse_args()
    clock = time.thread_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    what = "CPU time" if args.cpu_time else "wall clock"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {what}")
    print(f"{'model':6} {'batch':>5} {'pass':>9} {'ms/window':>10} {'tokens/s':>12}")
    for name, module in [("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)]:
        rnn = module(INPUT, HIDDEN)
        head = torch.nn.Linear(HIDDEN, OUTPUT)
        for batch in [1, 32]:
            x = torch.randn(STEPS, batch, INPUT)

            def forward():
                with torch.no_grad():
                    head(rnn(x)[0])

            xg = x.clone().requires_grad_(True)

            def forward_backward():
                rnn.zero_grad()
                head.zero_grad()
                xg.grad = None
                head(rnn(xg)[0]).sum().backward()

            for label, fn in [("fwd", forward), ("fwd+bwd", forward_backward)]:
                t = bench(fn, args.repeats, clock)
                print(f"{name:6} {batch:5} {label:>9} {t * 1e3:10.2f} {STEPS * batch / t:12.0f}")


if __name__ == "__main__":
    main()
