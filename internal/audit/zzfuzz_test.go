package audit

import (
	"bytes"
	"os"
	"testing"
)

func FuzzZZ(f *testing.F) {
	f.Add([]byte(`{"seq":1}` + "\n"))
	mode := os.Getenv("ZZMODE")
	f.Fuzz(func(t *testing.T, data []byte) {
		switch mode {
		case "query":
			_, _ = Query(bytes.NewReader(data), Filter{Platform: true})
		case "lines":
			lr := newLineReader(bytes.NewReader(data))
			for lr.next() != nil {
			}
		case "verify":
			_, _ = Verify(bytes.NewReader(data), fuzzKey.Public(), VerifyOptions{})
		}
	})
}
