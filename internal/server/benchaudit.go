//go:build !coffer_bench_noaudit

package server

// benchNoAudit is false in every normal build: the data plane audits every request and
// there is no switch to stop it. Only a binary built with the coffer_bench_noaudit tag, for
// tools/loadgen's audit-off baseline (BENCHMARKS.md), skips data-plane audit records.
const benchNoAudit = false
