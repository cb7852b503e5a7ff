#!/usr/bin/env python3
"""train.py: trains the project's small Hymba on data from data.py and
exports it in the Hugging Face layout hymeval loads.

    python3 tools/train/train.py --data WORK/train.npz --config tools/train/model_config.json \\
        --tokenizer DIR --out OUT [--time-limit SECONDS] [--resume]

Each sequence is BOS + prompt + answer + "\\n" (data.py). The loss is the
next-token cross-entropy over every token, with the answer tokens weighted
--answer-weight times: the answers are what the evaluation scores, and in a
long haystack they are a few tokens among thousands. Batches group sequences
of similar length (padding at the end, masked out of the loss: causal
attention and the causal scan never let a pad reach an earlier position).

The batches are planned from the data, the batch options and --seed alone
(lengths bucketed, then shuffled), so --steps N trains the same N batches on
any machine; --time-limit stops wherever the clock runs out.

AdamW, linear warm-up then cosine decay to 10%, gradient clipping, BF16
autocast on CUDA (FP32 on the CPU; the scan state is FP32 either way).
Every --save-every seconds and at the end (or at --time-limit) it writes
OUT/train_state.pt (model, optimiser, step, data order) and exports OUT/model
(config.json, model.safetensors, tokenizer.json, tokenizer_config.json), so a
run cut short loses at most that much and --resume continues it bit for bit.
A batch that runs out of GPU memory is redone as 2, 4, ... micro-batches with
the gradients accumulated (the same update), and so are the later ones.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hymba_torch  # noqa: E402


def batches(lengths, batch_tokens, max_batch, gen):
    """Index lists of sequences of similar length, about batch_tokens each, in random order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], torch.rand(1, generator=gen).item()))
    out, cur = [], []
    for i in order:  # ascending length: the newest sequence is the batch's longest
        if cur and (lengths[i] * (len(cur) + 1) > batch_tokens or len(cur) >= max_batch):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    perm = torch.randperm(len(out), generator=gen).tolist()
    return [out[k] for k in perm]


def collate(seqs, starts, idx, answer_weight, device, context_weight=1.0):
    T = max(len(seqs[i]) for i in idx)
    ids = torch.zeros(len(idx), T, dtype=torch.long)
    weight = torch.zeros(len(idx), T)
    for r, i in enumerate(idx):
        s = seqs[i].long()
        ids[r, :len(s)] = s
        weight[r, :len(s) - 1] = context_weight  # predicting token t+1 from position t
        weight[r, max(starts[i] - 1, 0):len(s) - 1] = answer_weight
    return ids.to(device), weight.to(device)


def lr_at(step, total, warmup, peak, time_progress=0.0):
    """Warm-up, then cosine decay to 10%. With --schedule-seconds the decay
    follows whichever runs out first, the planned steps or the training time
    (summed over --resume runs), so training that the clock stops still ends
    at the low learning rate."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_progress))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def loss_fn(model, ids, weight, total_weight=None):
    """Weighted mean cross-entropy; with total_weight, this micro-batch's share
    of the whole batch's mean (the shares' gradients add up to the batch's)."""
    logits = model(ids)
    ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                         reduction="none")
    w = weight[:, :-1].reshape(-1)
    return (ce * w).sum() / (w.sum() if total_weight is None else total_weight), logits


def split(idx, parts):
    """A batch (ascending lengths) as up to `parts` runs of neighbours."""
    n = len(idx)
    return [p for p in (idx[k * n // parts:(k + 1) * n // parts] for k in range(parts)) if p]


@torch.no_grad()
def evaluate(model, seqs, starts, idx_batches, device, autocast):
    """Held-out answer loss and answer exact match (teacher forced: every
    answer token is the argmax), a cheap proxy for the task scores."""
    model.eval()
    total_ce, total_tok, exact, n = 0.0, 0, 0, 0
    for idx in idx_batches:
        ids, _ = collate(seqs, starts, idx, 1.0, device)
        with autocast():
            logits = model(ids)
        pred = logits[:, :-1].argmax(-1)
        ce = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:], reduction="none")
        for r, i in enumerate(idx):
            a, e = max(starts[i] - 1, 0), len(seqs[i]) - 1
            total_ce += ce[r, a:e].sum().item()
            total_tok += e - a
            exact += int(torch.equal(pred[r, a:e], ids[r, a + 1:e + 1]))
            n += 1
    model.train()
    return total_ce / max(1, total_tok), exact / max(1, n)


def export(model, config, tokenizer_dir, out_dir, dtype):
    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    hymba_torch.save_hf(model, config, tmp, dtype=dtype)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(tmp, name))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--answer-weight", type=float, default=4.0)
    ap.add_argument("--heldout", type=int, default=200, help="sequences kept out of training for the eval")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--save-every", type=float, default=600, help="seconds")
    ap.add_argument("--time-limit", type=float, default=0, help="stop (saving) after this many seconds; 0: none")
    ap.add_argument("--schedule-seconds", type=float, default=0,
                    help="training seconds (over all --resume runs) the cosine decay spans; 0: steps only")
    ap.add_argument("--steps", type=int, default=0,
                    help="train the first N batches of the plan and stop (0: the whole plan); with it the run "
                         "is the same on any machine, where --time-limit depends on its speed")
    ap.add_argument("--schedule-steps", type=int, default=0,
                    help="steps the cosine decay spans (0: the steps trained); more than --steps leaves the "
                         "learning rate where a longer run would be at that step")
    ap.add_argument("--context-weight", type=float, default=1.0,
                    help="loss weight of the tokens before the answer (a haystack of repeated filler teaches "
                         "little once learned; < 1 lets the answers dominate the gradient)")
    ap.add_argument("--min-tokens", type=int, default=0,
                    help="train only on sequences of at least this many tokens (the long-context tasks)")
    ap.add_argument("--max-tokens", type=int, default=0,
                    help="and at most this many (0: no limit); short retrieval first is a cheap curriculum")
    ap.add_argument("--init-from", metavar="DIR", help="start from an exported checkpoint's weights (fresh optimiser)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--dtype", default="bfloat16", help="exported weights: bfloat16 or float32")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    t_start = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    device = torch.device(args.device)

    data = np.load(args.data)
    tokens, offsets = torch.from_numpy(data["tokens"].astype(np.int64)), data["offsets"].tolist()
    seqs = [tokens[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    starts = data["answer_start"].tolist()
    held = list(range(min(args.heldout, len(seqs) // 10)))
    train_idx = [i for i in range(len(held), len(seqs))
                 if len(seqs[i]) >= args.min_tokens and (not args.max_tokens or len(seqs[i]) <= args.max_tokens)]
    lengths = [len(seqs[i]) for i in train_idx]

    config = hymba_torch.load_config(args.config)
    model = hymba_torch.Hymba(config).to(device)
    decay = [p for n, p in model.named_parameters() if not hymba_torch.no_weight_decay(n, p)]
    no_decay = [p for n, p in model.named_parameters() if hymba_torch.no_weight_decay(n, p)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95),
                            fused=device.type == "cuda")
    gen = torch.Generator().manual_seed(args.seed)
    plan = []
    for epoch in range(math.ceil(args.epochs)):
        plan += [[train_idx[k] for k in b] for b in batches(lengths, args.batch_tokens, args.max_batch, gen)]
    plan = plan[:max(1, int(len(plan) * args.epochs / math.ceil(args.epochs)))]
    if args.steps:
        if args.steps > len(plan):
            sys.exit("train.py: --steps %d is more than the %d batches of %s at --epochs %g" %
                     (args.steps, len(plan), args.data, args.epochs))
        plan = plan[:args.steps]
    held_batches = [held[i:i + 8] for i in range(0, len(held), 8)]
    step, seen_tokens, train_seconds, log_mode = 0, 0, 0.0, "w"
    if args.init_from:
        model.load_state_dict(hymba_torch.load_hf(args.init_from, device=device)[0].state_dict())
        print("weights from %s" % args.init_from)
    state_path = os.path.join(args.out, "train_state.pt")
    if args.resume and os.path.exists(state_path):
        state = torch.load(state_path, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, seen_tokens, plan = state["step"], state["tokens"], state["plan"]
        train_seconds = state.get("train_seconds", 0.0)
        log_mode = "a"
        print("resumed at step %d of %d" % (step, len(plan)))
    n_params = sum(p.numel() for p in model.parameters())
    print("model: %d parameters; %d training sequences (%d tokens), %d steps; device %s" %
          (n_params, len(train_idx), sum(lengths), len(plan), device))
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else \
        (lambda: torch.autocast("cpu", enabled=False))
    log = open(os.path.join(args.out, "train_log.jsonl"), log_mode)

    def save(final=False):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "tokens": seen_tokens,
                    "train_seconds": train_seconds + time.time() - t_run, "plan": plan, "args": vars(args)}, state_path)
        export(model, config, args.tokenizer, os.path.join(args.out, "model"), args.dtype)
        print("saved at step %d%s" % (step, " (final)" if final else ""), flush=True)

    last_save, t_run, tokens_at_start, accum = time.time(), time.time(), seen_tokens, 1
    while step < len(plan):
        elapsed = train_seconds + time.time() - t_run
        time_progress = elapsed / args.schedule_seconds if args.schedule_seconds else 0.0
        lr = lr_at(step, args.schedule_steps or len(plan), args.warmup, args.lr, time_progress)
        for g in opt.param_groups:
            g["lr"] = lr
        # a batch that does not fit in GPU memory is redone as 2, 4, ... micro-batches
        # (gradients accumulated, the same update up to rounding), and so is every later one
        parts = [collate(seqs, starts, idx, args.answer_weight, device, args.context_weight)
                 for idx in split(plan[step], accum)]
        total_weight = sum(w[:, :-1].sum() for _, w in parts)
        opt.zero_grad(set_to_none=True)
        loss_value, oom = 0.0, False
        try:
            for ids, weight in parts:
                with autocast():
                    loss, _ = loss_fn(model, ids, weight, total_weight)
                loss.backward()
                loss_value += loss.item()
        except torch.cuda.OutOfMemoryError:
            if accum >= len(plan[step]):
                raise
            oom = True
        if oom:
            loss = ids = weight = parts = None
            opt.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            accum *= 2
            print("step %d: out of GPU memory; now %d micro-batches per step" % (step + 1, accum), flush=True)
            continue
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        opt.step()
        step += 1
        seen_tokens += sum(ids.numel() for ids, _ in parts)
        rec = {"step": step, "loss": round(loss_value, 5), "lr": lr, "gnorm": round(gnorm, 4),
               "tokens": seen_tokens, "seconds": round(time.time() - t_start, 1)}
        if accum > 1:
            rec["micro_batches"] = accum
        if step % args.eval_every == 0 or step == len(plan):
            rec["heldout_answer_loss"], rec["heldout_answer_exact"] = evaluate(model, seqs, starts, held_batches,
                                                                               device, autocast)
        log.write(json.dumps(rec) + "\n")
        log.flush()
        if step % 20 == 0 or "heldout_answer_loss" in rec:
            tps = (seen_tokens - tokens_at_start) / max(1e-9, time.time() - t_run)
            print("step %5d/%d loss %.4f lr %.2e gnorm %.2f %s%.0f tok/s" % (
                step, len(plan), rec["loss"], lr, gnorm,
                ("heldout answer loss %.3f exact %.3f " % (rec["heldout_answer_loss"], rec["heldout_answer_exact"])
                 if "heldout_answer_loss" in rec else ""), tps), flush=True)
        if time.time() - last_save > args.save_every:
            save()
            last_save = time.time()
        if args.time_limit and time.time() - t_start > args.time_limit:
            break
    save(final=step >= len(plan))
    if device.type == "cuda":
        print("peak GPU memory %.1f GiB" % (torch.cuda.max_memory_allocated() / 2**30))


if __name__ == "__main__":
    main()
