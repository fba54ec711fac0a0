//go:build coffer_bench_noaudit

package server

// benchNoAudit makes this build skip data-plane audit records. It exists only so that
// tools/loadgen can measure what auditing costs (BENCHMARKS.md); never ship such a binary.
const benchNoAudit = true
