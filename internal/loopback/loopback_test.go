package loopback

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrs(t *testing.T) {
	addrs, err := Addrs(6)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	hi := ephemeralLow()
	for _, a := range addrs {
		if seen[a] {
			t.Errorf("address %s handed out twice", a)
		}
		seen[a] = true
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if port < lowest || port >= hi {
			t.Errorf("port %d outside %d..%d", port, lowest, hi-1)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("address %s not bindable after Addrs returned: %v", a, err)
			continue
		}
		l.Close()
	}
}
