#!/usr/bin/env bash
# ctmq-eval's failure policy under MPI (the one of every MPI executable,
# apps::run_mpi_main): a record with a bad checksum in rank 0's half, then in
# rank 1's half of the test set, must end a 2-rank evaluation within seconds
# with a non-zero exit, a rank-tagged error naming the shard and the record,
# and no eval.json; one rank gives the same error. Before the policy, the
# failing rank unwound into MPI_Finalize while the other waited in an
# allreduce: the job hung. Real Fashion-MNIST, tiny model. Env: CTMQ_BIN_DIR.
set -euo pipefail
test_name=eval_cli
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

shard_fashion_mnist "$tmp/shards"
write_run_ini "$tmp/run.ini" "$tmp/shards" data.test-manifest="$tmp/test/manifest.json" \
  data.train-limit=256 data.test-limit=2000 model.arch= train.seed=
run=$tmp/run
"$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp >"$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log" >&2; fail "ctmq-train c0-fp"; }

# corrupt_record INDEX: a fresh copy of the test shards with one pixel byte of
# record INDEX XORed (records are 4 + 784 + 4 bytes after a 64-byte header;
# shards hold 5,000 records).
corrupt_record() {
  rm -rf "$tmp/test"
  cp -r "$tmp/shards/test" "$tmp/test"
  local shard=$(($1 / 5000)) local_index=$(($1 % 5000))
  local file offset
  file=$(printf '%s/test/shard-%05d.ctmq' "$tmp" "$shard")
  offset=$((64 + local_index * 792 + 4 + 300))
  python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x5A]))' "$file" "$offset"
  echo "$file"
}

for index in 100 1500; do  # rank 0 evaluates [0, 1000), rank 1 [1000, 2000)
  file=$(corrupt_record $index)
  for ranks in 2 1; do
    rm -f "$run/stages/c0-fp/eval.json"
    start=$SECONDS
    set +e
    timeout 60 mpirun -n $ranks --oversubscribe --bind-to none \
      "$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp >"$tmp/out" 2>"$tmp/err"
    rc=$?
    set -e
    took=$((SECONDS - start))
    ((rc != 124)) || fail "record $index, $ranks rank(s): still running after 60 s (hang)"
    ((rc != 0)) || fail "record $index, $ranks rank(s): exit 0 with a corrupt record"
    ((took <= 30)) || fail "record $index, $ranks rank(s): took $took s to fail"
    grep -q "$(basename "$file"): record $((index % 5000)) .*fails its checksum" "$tmp/err" ||
      fail "record $index, $ranks rank(s): the error does not name shard and record: $(cat "$tmp/err")"
    if ((ranks == 2)); then
      grep -q "ctmq-eval\[rank [01]\]: error" "$tmp/err" || fail "record $index: error not rank-tagged: $(cat "$tmp/err")"
    fi
    [[ ! -e $run/stages/c0-fp/eval.json ]] || fail "record $index, $ranks rank(s): eval.json written"
    echo "eval_cli: record $index, $ranks rank(s): exit $rc after $took s, shard and record named"
  done
done

# A successful evaluation adds its result to the stage's TensorBoard curves:
# one more event file (ctmq-train wrote one) holding the eval/top1 scalar.
rm -rf "$tmp/test"
cp -r "$tmp/shards/test" "$tmp/test"
events=$run/tensorboard/c0-fp
[[ $(compgen -G "$events/events.out.tfevents.*" | wc -l) == 1 ]] || fail "ctmq-train wrote no single event file in $events"
"$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "ctmq-eval"; }
mapfile -t files < <(ls -t "$events"/events.out.tfevents.*)
((${#files[@]} == 2)) || fail "ctmq-eval did not add an event file to $events"
grep -q "eval/top1" "${files[0]}" || fail "ctmq-eval's event file ${files[0]} has no eval/top1"
grep -q "eval/top1" "${files[1]}" && fail "the training's event file has an eval/top1 (no eval-every was set)"
echo "eval_cli: the evaluation is in the stage's TensorBoard directory"
echo "eval_cli: PASS"
