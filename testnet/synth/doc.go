// Package synth generates deterministic synthetic data for the local testnet
// and for tests: a bank customer table and one user table per data partner
// (e-commerce, utility, tax), sharing a configurable fraction of persons.
//
// The data are realistic where it matters to Tandem:
//
//   - Identifiers of one person are written in different messy formats on
//     each side ("+86 138-0013-8000", "0086 13800138000", "(+86)138 0013 8000",
//     full-width digits, lower-case "x" and 15-digit legacy resident IDs,
//     e-mail addresses in upper case or padded with spaces), so matching needs
//     psi/ident canonicalisation.
//   - Resident ID numbers have valid GB 11643 check characters and real
//     region codes, and embed a birth date consistent with the age column.
//   - A fraction (Config.InvalidRate) of phone and id cells is invalid (wrong
//     length, bad check character); some partner phones are missing or
//     changed, so some shared persons match only by id_no.
//   - has_card follows a logistic model of latent affluence (seen through
//     bank income and the tax band), shopping propensity (e-commerce spend
//     and orders) and payment risk (utility late payments), so statistics,
//     WOE/IV and joint models find signal in the partners' features.
//
// Truth reports, per partner, how many shared persons are matchable by phone,
// by id_no and by either, which equals a plaintext join after
// canonicalisation, so PSI results can be checked exactly.
//
// Every value is a function of Config.Seed and the person's index (persons
// draw from independent splitmix64 streams), so output is byte-identical
// across runs and platforms; ages are computed against a fixed date
// (2025-06-30), never the clock. Generating 1e6 bank and 1e6 partner rows
// takes about 3 s on one core and constant memory.
package synth
