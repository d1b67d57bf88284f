# Regenerates german_credit.csv and german_credit_glm.csv (make realdata-ref).
#
# Data: the Statlog (German Credit Data) set of the UCI Machine Learning
# Repository (Hofmann, 1994; CC BY 4.0), as shipped by R's caret package
# (data(GermanCredit), Debian r-cran-caret), whose 0/1 dummy columns are
# folded back here into the original categorical attributes so that the
# file looks like a real customer table: one row per applicant, numbers and
# category labels, no identifiers (the tests add synthetic, messy ones).
#
# Reference: R's glm (binomial, logit link, no penalty) on all 1000 rows with
# the indicator features of the node tests, coefficients on the raw scale;
# node/realdata_test.go checks that the Go plaintext baseline reproduces it.
suppressMessages(library(caret))
data(GermanCredit, package = "caret")
g <- GermanCredit

fold <- function(prefix) {
  cols <- grep(paste0("^", prefix, "\\."), names(g), value = TRUE)
  levels <- sub(paste0("^", prefix, "\\."), "", cols)
  m <- as.matrix(g[, cols])
  stopifnot(all(rowSums(m) == 1))
  tolower(gsub("\\.", "_", levels[max.col(m)]))
}

out <- data.frame(
  applicant = seq_len(nrow(g)),
  bad = as.integer(g$Class == "Bad"),
  duration_months = g$Duration,
  amount = g$Amount,
  installment_rate = g$InstallmentRatePercentage,
  age = g$Age,
  existing_credits = g$NumberExistingCredits,
  checking = fold("CheckingAccountStatus"),
  credit_history = fold("CreditHistory"),
  purpose = fold("Purpose"),
  savings = fold("SavingsAccountBonds"),
  employment = fold("EmploymentDuration"),
  personal = fold("Personal"),
  other_debtors = fold("OtherDebtorsGuarantors"),
  residence_years = g$ResidenceDuration,
  property = fold("Property"),
  other_plans = fold("OtherInstallmentPlans"),
  housing = fold("Housing"),
  job = fold("Job"),
  dependents = g$NumberPeopleMaintenance,
  telephone = g$Telephone,
  foreign_worker = g$ForeignWorker
)
write.csv(out, "german_credit.csv", row.names = FALSE, quote = FALSE)

# The features of node/realdata_test.go (bank | partner), indicators as
# column=level with the most common level left out as the reference.
ind <- function(col, level) as.numeric(out[[col]] == level)
x <- data.frame(
  duration_months = out$duration_months, amount = out$amount,
  installment_rate = out$installment_rate, age = out$age,
  `checking=lt_0` = ind("checking", "lt_0"), `checking=0_to_200` = ind("checking", "0_to_200"),
  `checking=gt_200` = ind("checking", "gt_200"),
  `credit_history=critical` = ind("credit_history", "critical"),
  `credit_history=delay` = ind("credit_history", "delay"),
  `credit_history=thisbank_allpaid` = ind("credit_history", "thisbank_allpaid"),
  `credit_history=nocredit_allpaid` = ind("credit_history", "nocredit_allpaid"),
  `purpose=newcar` = ind("purpose", "newcar"), `purpose=usedcar` = ind("purpose", "usedcar"),
  `purpose=education` = ind("purpose", "education"),
  `savings=lt_100` = ind("savings", "lt_100"), `savings=unknown` = ind("savings", "unknown"),
  `employment=lt_1` = ind("employment", "lt_1"), `employment=gt_7` = ind("employment", "gt_7"),
  `other_debtors=guarantor` = ind("other_debtors", "guarantor"),
  `property=realestate` = ind("property", "realestate"), `property=unknown` = ind("property", "unknown"),
  `other_plans=bank` = ind("other_plans", "bank"), `housing=rent` = ind("housing", "rent"),
  `personal=male_single` = ind("personal", "male_single"),
  residence_years = out$residence_years, telephone = out$telephone,
  check.names = FALSE)
fit <- glm(out$bad ~ ., data = x, family = binomial())
co <- coef(fit)
names(co) <- gsub("`", "", names(co))
auc <- function(s, y) {
  r <- rank(s)
  n1 <- sum(y == 1); n0 <- sum(y == 0)
  (sum(r[y == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0)
}
ref <- data.frame(term = c(names(co), "(auc)"), value = c(unname(co), auc(fitted(fit), out$bad)))
write.csv(ref, "german_credit_glm.csv", row.names = FALSE, quote = FALSE)
print(ref, digits = 10)
