package authz

import (
	"fmt"
	"testing"
)

// BenchmarkDecide decides against a Snapshot of 1,000 assignments over 100 principals in
// 10 tenants (10 assignments each: data roles at tenant, vault and key scopes, some
// expired), cycling through allowed and denied requests.
func BenchmarkDecide(b *testing.B) {
	roles := []string{
		"12338af0-0e69-4776-bea7-57ae8d297424", // Key Vault Crypto User
		"4633458b-17de-408a-b874-0445c86b69e6", // Key Vault Secrets User
		"21090545-7ca7-4776-b22c-e363652d74d2", // Key Vault Reader
		"a4417e6f-fecd-4de8-b567-7b0420556985", // Key Vault Certificates Officer
		"21dbd100-6940-42c2-9190-5d6cb909625b", // Managed HSM Crypto User
	}
	var assignments []Assignment
	for p := range 100 {
		tenant := fmt.Sprintf("tenant-%d", p%10)
		for j := range 10 {
			a := Assignment{
				ID:               fmt.Sprintf("a-%03d-%02d", p, j),
				PrincipalID:      fmt.Sprintf("principal-%03d", p),
				TenantID:         tenant,
				RoleDefinitionID: roles[(p+j)%len(roles)],
			}
			switch j % 4 {
			case 0:
				a.Scope = fmt.Sprintf("/tenants/%s/vaults/vault-%d/keys/key-%d", tenant, j, j)
			case 1:
				a.Scope = fmt.Sprintf("/tenants/%s/vaults/vault-%d", tenant, j)
			case 2:
				a.Scope = fmt.Sprintf("/tenants/%s/managedHsms/hsm-%d", tenant, j)
			case 3:
				a.Scope = fmt.Sprintf("/tenants/%s/vaults/vault-%d/secrets/s-%d", tenant, j, j)
				a.ExpiresAt = testNow.Add(-1) // expired just-in-time grant
			}
			assignments = append(assignments, a)
		}
	}
	snap, err := NewSnapshot(nil, assignments)
	if err != nil {
		b.Fatalf("NewSnapshot: %v", err)
	}
	if snap.Len() != 1000 {
		b.Fatalf("Snapshot.Len() = %d; want 1000", snap.Len())
	}
	actions := []Action{KeysSign, SecretsGetSecret, KeysRead, CertificatesRead, KeysPurge}
	var reqs []Request
	for p := range 100 {
		tenant := fmt.Sprintf("tenant-%d", p%10)
		for j := range 10 {
			reqs = append(reqs, Request{
				PrincipalID:     fmt.Sprintf("principal-%03d", p),
				PrincipalTenant: tenant,
				Action:          actions[(p+j)%len(actions)],
				Scope:           mustScope(b, fmt.Sprintf("/tenants/%s/vaults/vault-%d/keys/key-%d", tenant, j, j)),
				Now:             testNow,
			})
		}
	}
	allowed := 0
	for _, r := range reqs {
		if snap.Decide(r).Allowed {
			allowed++
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		snap.Decide(reqs[i%len(reqs)])
		i++
	}
	b.ReportMetric(float64(allowed)/float64(len(reqs)), "allowed/op")
}
