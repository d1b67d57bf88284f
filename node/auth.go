package node

import (
	"context"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// methodRoles is the operator API's permission table: full method name →
// roles allowed. admin may call everything. Methods not listed are refused.
var methodRoles = map[string][]string{
	"Status":           {"analyst", "compliance", "marketing"},
	"AddPeer":          {},
	"ListPeers":        {"analyst", "compliance"},
	"AddDataset":       {"analyst"},
	"ListDatasets":     {"analyst", "compliance"},
	"GetDataset":       {"analyst", "compliance"},
	"ProposeAgreement": {},
	"DecideAgreement":  {},
	"ListAgreements":   {"analyst", "compliance"},
	"GetAgreement":     {"analyst", "compliance"},
	"SubmitJob":        {"analyst"},
	"ListJobs":         {"analyst", "compliance", "marketing"},
	"GetJob":           {"analyst", "compliance", "marketing"},
	"CancelJob":        {"analyst"},
	"WatchJob":         {"analyst", "compliance", "marketing"},
	"ExportMatches":    {"analyst"},
	"AuditTail":        {"compliance"},
	"AuditExport":      {"compliance"},
	"AuditShow":        {"compliance"},
	"ListModels":       {"analyst", "compliance"},
	"GetModel":         {"analyst", "compliance"},
	"ScoreLocal":       {"analyst"},
}

type roleKey struct{}

// callerRole returns the authenticated role stored by the interceptor.
func callerRole(ctx context.Context) string {
	r, _ := ctx.Value(roleKey{}).(string)
	return r
}

// authenticate maps the bearer token to a role. Comparison is constant
// time over the SHA-256 of the token; tokens are never logged.
func (n *Node) authenticate(ctx context.Context, fullMethod string) (context.Context, error) {
	// Health and reflection are open on the control listener (loopback).
	if strings.HasPrefix(fullMethod, "/grpc.health.") || strings.HasPrefix(fullMethod, "/grpc.reflection.") {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var tok string
	if v := md.Get("authorization"); len(v) > 0 {
		tok, _ = strings.CutPrefix(v[0], "Bearer ")
	}
	if tok == "" {
		n.metrics.authFailures.Inc()
		return nil, status.Error(codes.Unauthenticated, "missing bearer token")
	}
	h := hashToken(tok)
	role := ""
	for r, want := range n.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(h), []byte(want)) == 1 {
			role = r
		}
	}
	if role == "" {
		n.metrics.authFailures.Inc()
		return nil, status.Error(codes.Unauthenticated, "unknown token")
	}
	method := fullMethod[strings.LastIndex(fullMethod, "/")+1:]
	if !roleAllowed(role, method) {
		n.metrics.authFailures.Inc()
		return nil, status.Errorf(codes.PermissionDenied, "role %s may not call %s", role, method)
	}
	return context.WithValue(ctx, roleKey{}, role), nil
}

func roleAllowed(role, method string) bool {
	allowed, ok := methodRoles[method]
	if !ok {
		return false
	}
	if role == "admin" {
		return true
	}
	for _, r := range allowed {
		if r == role {
			return true
		}
	}
	return false
}

func (n *Node) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := n.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

type authStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s authStream) Context() context.Context { return s.ctx }

func (n *Node) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := n.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, authStream{ss, ctx})
}
