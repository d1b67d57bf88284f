# Splits german_credit.csv between a bank and a partner for
# scripts/realdata-glm.sh, the way a real pair of data owners would hold it:
#   bank.csv    every applicant: phone, id_no, the label and the loan file
#   partner.csv 85 % of the applicants in another order, plus 300 users who
#               are not bank customers: mobile, id_number, household data
#   joined.csv  the ground truth join (for glm only; no node reads it)
# Identifiers are synthetic and messy: mobiles in four formats, some
# missing on the partner side, id numbers in lower case or missing there.
# With "missing" as the second argument, about 5 % of the cells of four
# columns are NA (amount and checking at the bank, savings and
# residence_years at the partner), in the files and in the join alike.
# Usage: Rscript german_credit_split.R OUTDIR [missing]
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) > 0) args[1] else "."
missing <- length(args) > 1 && args[2] == "missing"
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
g <- read.csv(file.path(here, "german_credit.csv"), stringsAsFactors = FALSE)
set.seed(20261206)

n <- nrow(g) + 300
phones <- sprintf("1%d%09d", sample(3:9, n, replace = TRUE), sample.int(1e9, n) - 1)
cn_id <- function(k) {
  body <- sprintf("%s%d%02d%02d%03d", sample(c("110105", "310104", "440305", "330106"), k, replace = TRUE),
                  sample(1950:1999, k, replace = TRUE), sample(1:12, k, replace = TRUE),
                  sample(1:28, k, replace = TRUE), sample(0:999, k, replace = TRUE))
  w <- 2^(17:1) %% 11
  check <- sapply(strsplit(body, ""), function(d) (12 - sum(as.integer(d) * w) %% 11) %% 11)
  paste0(body, ifelse(check == 10, "X", as.character(check)))
}
ids <- cn_id(n)
fmt <- function(p, k) switch(k, paste0("+86 ", substr(p, 1, 3), "-", substr(p, 4, 7), "-", substr(p, 8, 11)),
                             paste0("(+86)", substr(p, 1, 3), " ", substr(p, 4, 7), " ", substr(p, 8, 11)),
                             paste0("0086", p), p)

bank_cols <- c("bad", "duration_months", "amount", "installment_rate", "age", "checking", "credit_history", "purpose")
partner_cols <- c("savings", "employment", "personal", "other_debtors", "residence_years", "property", "other_plans", "housing", "telephone")
bank <- data.frame(phone = mapply(fmt, phones[seq_len(nrow(g))], 1 + seq_len(nrow(g)) %% 2), id_no = ids[seq_len(nrow(g))], g[, bank_cols])

shared <- sample.int(nrow(g), round(0.85 * nrow(g)))
persons <- sample(c(shared, nrow(g) + 1:300))
src <- ifelse(persons <= nrow(g), persons, sample.int(nrow(g), length(persons), replace = TRUE))
mobile <- mapply(fmt, phones[persons], sample(2:4, length(persons), replace = TRUE))
mobile[runif(length(persons)) < 0.10] <- ""
id_number <- tolower(ids[persons])
id_number[runif(length(persons)) < 0.40] <- ""
partner <- data.frame(mobile = mobile, id_number = id_number, g[src, partner_cols])

if (missing) {
  for (c in c("amount", "checking")) bank[runif(nrow(bank)) < 0.05, c] <- NA
  for (c in c("savings", "residence_years")) partner[runif(nrow(partner)) < 0.05, c] <- NA
}

# Ground truth: a shared applicant is joinable when one identifier is
# present on both sides (the bank writes both, always valid).
p_row <- persons <= nrow(g) & (mobile != "" | id_number != "")
joined <- cbind(applicant = g$applicant[persons[p_row]], bank[persons[p_row], bank_cols], partner[p_row, partner_cols])

write.csv(bank, file.path(out, "bank.csv"), row.names = FALSE)
write.csv(partner, file.path(out, "partner.csv"), row.names = FALSE)
write.csv(joined, file.path(out, "joined.csv"), row.names = FALSE)
cat(sprintf("bank %d rows, partner %d rows, %d shared applicants joinable\n", nrow(bank), nrow(partner), nrow(joined)))
