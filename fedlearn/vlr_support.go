package fedlearn

// Helpers used by the vertical logistic regression package (fedlearn/vlr).
// They only inspect the public parts of existing messages; they add no new
// decryption capability.

// ResultCount returns the number of LWE ciphertexts (inner products) in a
// Result message, after full validation. Receivers of a Result use it to
// check, before producing a release share, that the Result holds exactly
// the number of statistics the protocol step allows.
func (s *Session) ResultCount(result []byte) (int, error) {
	v, err := s.parseResult(result)
	if err != nil {
		return 0, err
	}
	return v.count, nil
}
