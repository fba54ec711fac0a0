package skr

import (
	"bytes"
	"encoding/json"
)

// MarshalJSON encodes p in its canonical form: the grammar's member names in their documented
// spelling and order. Parse(MarshalJSON(p)) yields p again.
func (p *Policy) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"version":`)
	writeJSON(&b, p.Version)
	b.WriteString(`,"anyOf":[`)
	for i, a := range p.Authorities {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"authority":`)
		writeJSON(&b, a.URL)
		b.WriteByte(',')
		writeGroup(&b, &a.Cond)
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}

func writeGroup(b *bytes.Buffer, c *Condition) {
	if c.Kind == AllOf {
		b.WriteString(`"allOf":[`)
	} else {
		b.WriteString(`"anyOf":[`)
	}
	for i := range c.Children {
		if i > 0 {
			b.WriteByte(',')
		}
		ch := &c.Children[i]
		b.WriteByte('{')
		if ch.Kind == Claim {
			b.WriteString(`"claim":`)
			writeJSON(b, ch.Claim)
			b.WriteString(`,"` + string(ch.Op) + `":`)
			writeJSON(b, ch.Value)
		} else {
			writeGroup(b, ch)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
}

// writeJSON writes a string, bool or json.Number, which always encode.
func writeJSON(b *bytes.Buffer, v any) {
	enc, _ := json.Marshal(v)
	b.Write(enc)
}
