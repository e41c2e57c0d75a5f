package checks

import (
	"context"
	"net"
)

func runTCP(ctx context.Context, t *TCP) Result {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return failed("connecting to %s: %v", t.Address, err)
	}
	conn.Close()
	return Result{Pass: true, Observed: map[string]any{"address": t.Address}}
}
