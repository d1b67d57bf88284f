# Compares a tandem score job with R's glm on the joined plaintext
# (scripts/realdata-glm.sh). glm is fitted on every joinable shared
# applicant with the model's features, unpenalised; its in-sample AUC is
# compared with the score job's labelled_auc (the split model scored on the
# same rows, trained on all of them with validation_fraction: 0).
# Usage: Rscript german_credit_glm_check.R DIR LABELLED_AUC LABELLED_ROWS
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(file.path(args[1], "joined.csv"), stringsAsFactors = FALSE)
tandem_auc <- as.numeric(args[2])
tandem_rows <- as.integer(args[3])
ind <- function(col, level) as.numeric(d[[col]] == level)
x <- data.frame(
  duration_months = d$duration_months, amount = d$amount, installment_rate = d$installment_rate, age = d$age,
  c1 = ind("checking", "lt_0"), c2 = ind("checking", "0_to_200"), c3 = ind("checking", "gt_200"),
  h1 = ind("credit_history", "critical"), h2 = ind("credit_history", "delay"),
  h3 = ind("credit_history", "thisbank_allpaid"), h4 = ind("credit_history", "nocredit_allpaid"),
  p1 = ind("purpose", "newcar"), p2 = ind("purpose", "usedcar"), p3 = ind("purpose", "education"),
  s1 = ind("savings", "lt_100"), s2 = ind("savings", "unknown"), e1 = ind("employment", "lt_1"),
  e2 = ind("employment", "gt_7"), o1 = ind("other_debtors", "guarantor"), r1 = ind("property", "realestate"),
  r2 = ind("property", "unknown"), op = ind("other_plans", "bank"), hr = ind("housing", "rent"),
  ms = ind("personal", "male_single"), residence_years = d$residence_years, telephone = d$telephone)
fit <- glm(d$bad ~ ., data = x, family = binomial())
auc <- function(s, y) {
  r <- rank(s)
  n1 <- sum(y == 1); n0 <- sum(y == 0)
  (sum(r[y == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0)
}
glm_auc <- auc(fitted(fit), d$bad)
cat(sprintf("glm (R %s) on the joined plaintext: %d rows, in-sample AUC %.5f\n", getRversion(), nrow(d), glm_auc))
cat(sprintf("tandem split model, score job labelled_auc:  %d rows, AUC %.5f  (difference %+.5f)\n", tandem_rows, tandem_auc, tandem_auc - glm_auc))
if (tandem_rows != nrow(d)) {
  cat("FAIL: the score job scored a different number of labelled rows than the ground-truth join\n")
  quit(status = 1)
}
if (abs(tandem_auc - glm_auc) > 0.005) {
  cat("FAIL: |difference| > 0.005\n")
  quit(status = 1)
}
cat("ok: within 0.005\n")
