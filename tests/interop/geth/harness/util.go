package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/golang/snappy"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// maxIncompressible is the largest payload of xorshift(seed) bytes geth's rlpx.Conn.Write
// takes with snappy on: the frame (message code and snappy output) must fit in maxUint24.
// Codes below 0x80 take one byte. The same snappy package as geth's is used here, so the
// figure is exact for geth's encoder.
func maxIncompressible(seed uint64) int {
	codeLen := rlp.IntSize(0x10)
	n := maxUint24 - codeLen
	data := xorshift(n, seed)
	for {
		over := codeLen + len(snappy.Encode(nil, data[:n])) - maxUint24
		if over <= 0 {
			// Grow back a byte at a time in case a step overshot (snappy's block
			// headers make the size a step function).
			for n < len(data) && codeLen+len(snappy.Encode(nil, data[:n+1])) <= maxUint24 {
				n++
			}
			return n
		}
		n -= over
	}
}

func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "trace":
		return log.LevelTrace, nil
	case "debug":
		return log.LevelDebug, nil
	case "info":
		return log.LevelInfo, nil
	case "warn":
		return log.LevelWarn, nil
	case "error":
		return log.LevelError, nil
	case "off":
		return slog.Level(1 << 20), nil
	}
	return 0, fmt.Errorf("unknown level %q", s)
}

// jsonHandler reports geth's log records as `log` events: {"lvl","msg","ctx":{key: text}}.
type jsonHandler struct {
	level slog.Level
	attrs []slog.Attr
}

func (h *jsonHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *jsonHandler) Handle(_ context.Context, r slog.Record) error {
	ctx := map[string]any{}
	for _, a := range h.attrs {
		ctx[a.Key] = valueText(a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		ctx[a.Key] = valueText(a.Value)
		return true
	})
	emit(map[string]any{"event": "log", "lvl": log.LevelString(r.Level), "msg": r.Message, "ctx": ctx})
	return nil
}

func (h *jsonHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &jsonHandler{level: h.level, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
	return n
}

func (h *jsonHandler) WithGroup(string) slog.Handler { return h }

func valueText(v slog.Value) string {
	v = v.Resolve()
	if v.Kind() == slog.KindAny {
		switch x := v.Any().(type) {
		case nil:
			return "nil"
		case error:
			return x.Error()
		case fmt.Stringer:
			return x.String()
		default:
			return fmt.Sprint(x)
		}
	}
	return v.String()
}
