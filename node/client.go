package node

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	tandemv1 "github.com/tandem-dev/tandem/proto/tandem/v1"
)

// Client is an operator connection to a node's ControlService.
type Client struct {
	tandemv1.ControlServiceClient
	conn *grpc.ClientConn
}

// DialControl connects to a control listener with a bearer token. The
// control listener is loopback-only by default, so the channel is plain
// gRPC; the token is sent per call.
func DialControl(addr, token string) (*Client, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(token)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("node: dial control %s: %w", addr, err)
	}
	return &Client{ControlServiceClient: tandemv1.NewControlServiceClient(conn), conn: conn}, nil
}

// DialHome connects to the node whose home is dir, with the token of role.
func DialHome(dir, role string) (*Client, error) {
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	tok, err := ReadToken(dir, role)
	if err != nil {
		return nil, err
	}
	return DialControl(c.ControlListen, tok)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: the control listener is loopback.
func (bearer) RequireTransportSecurity() bool { return false }
