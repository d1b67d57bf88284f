#!/usr/bin/env bash
# The issue's acceptance check, by hand and end to end: the German credit
# data split between two real tandem processes with messy identifiers
# (testnet/testdata/german_credit_split.R), PSI, training on every shared
# applicant, federated scoring, and the split model's AUC against R's glm
# on the joined plaintext (german_credit_glm_check.R). Needs Rscript
# (apt-get install r-base-core). `make realdata-glm` runs it twice: as is,
# and with `missing` as the argument, which blanks about 5 % of the cells
# of four columns (two on each side) and trains with `missing: drop`, glm's
# own rule (na.omit: complete rows only).
set -euo pipefail
mode=${1:-complete}
case "$mode" in complete|missing) ;; *) echo "usage: $0 [missing]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
command -v Rscript >/dev/null || { echo "realdata-glm: Rscript not found (apt-get install r-base-core)" >&2; exit 2; }

dir=$(mktemp -d /tmp/tandem-realdata.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$dir"; else echo "kept $dir"; fi
}
trap cleanup EXIT

go build -o "$dir/tandem" ./cmd/tandem
T="$dir/tandem"
Rscript testnet/testdata/german_credit_split.R "$dir" "$mode" 2>/dev/null

# Free loopback ports for the two nodes (peer, control, http each).
base=$(( 20000 + RANDOM % 12000 ))  # below the ephemeral range (32768+), so no outgoing connection takes one
"$T" init --name bank --dir "$dir/bank" --peer-listen 127.0.0.1:$base \
  --control-listen 127.0.0.1:$((base+1)) --http-listen 127.0.0.1:$((base+2)) > "$dir/bank.card"
"$T" init --name partner-a --dir "$dir/partner" --peer-listen 127.0.0.1:$((base+3)) \
  --control-listen 127.0.0.1:$((base+4)) --http-listen 127.0.0.1:$((base+5)) > "$dir/partner.card"
"$T" node --home "$dir/bank" > "$dir/bank.log" 2>&1 & pids+=($!)
"$T" node --home "$dir/partner" > "$dir/partner.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do
  "$T" --home "$dir/bank" peer list >/dev/null 2>&1 && "$T" --home "$dir/partner" peer list >/dev/null 2>&1 && break
  sleep 0.2
done
fp() { awk '/fingerprint:/ {print $2}' "$1"; }
"$T" --home "$dir/bank" peer add --name partner-a --addr 127.0.0.1:$((base+3)) --key "$(fp "$dir/partner.card")"
"$T" --home "$dir/partner" peer add --name bank --addr 127.0.0.1:$base --key "$(fp "$dir/bank.card")"
"$T" --home "$dir/bank" dataset add --name customers --file "$dir/bank.csv" --id phone:cn_mobile,id_no:cn_id \
  --label bad --features duration_months,amount,installment_rate,age --attrs checking,credit_history,purpose
"$T" --home "$dir/partner" dataset add --name users --file "$dir/partner.csv" --id mobile:cn_mobile,id_number:cn_id \
  --features residence_years,telephone --attrs savings,employment,personal,other_debtors,property,other_plans,housing

cat > "$dir/agreement.yaml" <<YAML
purpose: "credit risk model on the German credit data"
job_kinds: [ping, psi, train, score]
datasets:
  - {party: bank, dataset: customers, columns: [phone, id_no, bad, duration_months, amount, installment_rate, age, checking, credit_history, purpose]}
  - {party: partner-a, dataset: users, columns: [mobile, id_number, savings, employment, personal, other_debtors, residence_years, property, other_plans, housing, telephone]}
psi_reveal: [initiator]
valid_days: 30
YAML
"$T" --home "$dir/bank" agreement propose --peer partner-a --file "$dir/agreement.yaml"
agr=""
for _ in $(seq 50); do
  agr=$("$T" --home "$dir/partner" agreement list | grep -o 'agr-[0-9a-f]*' | head -1 || true)
  [ -n "$agr" ] && break
  sleep 0.2
done
"$T" --home "$dir/partner" agreement accept "$agr"

field() { awk -v k="$1:" '$1 == k {print $2; exit}'; }
psi=$("$T" --home "$dir/bank" psi --peer partner-a --dataset customers --peer-dataset users --wait | tee "$dir/psi.out" | field job)
[ -n "$psi" ] || psi=$("$T" --home "$dir/bank" job list | awk '/psi/ {print $1; exit}')
echo "PSI job $psi: intersection $(field intersection < "$dir/psi.out")"

# Categorical columns named plainly, as in the R formula: each node expands
# its own into indicators (glm codes them as factors).
cat > "$dir/model.yaml" <<YAML
label: bad
bank_features: [duration_months, amount, installment_rate, age, checking, credit_history, purpose]
partner_features: [savings, employment, other_debtors, property, other_plans, housing, personal, residence_years, telephone]
YAML
[ "$mode" = missing ] && echo "missing: drop" >> "$dir/model.yaml"
model=$("$T" --home "$dir/bank" train --psi-job "$psi" --spec "$dir/model.yaml" --wait | field model_id)
echo "model $model (defaults: 30 epochs, degree 9, no penalty, no hold-out; missing values: $mode)"
"$T" --home "$dir/bank" score --model "$model" --psi-job "$psi" --wait > "$dir/score.out"
auc=$(field labelled_auc < "$dir/score.out")
rows=$(field labelled_rows < "$dir/score.out")
Rscript testnet/testdata/german_credit_glm_check.R "$dir" "$auc" "$rows" 2>/dev/null
