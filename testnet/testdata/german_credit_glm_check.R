# Compares a tandem score job with R's glm on the joined plaintext
# (scripts/realdata-glm.sh). glm is fitted on every joinable shared
# applicant with the model's features, unpenalised; its in-sample AUC is
# compared with the score job's labelled_auc (the split model scored on the
# same rows, trained on all of them with validation_fraction: 0). The
# categorical columns are factors in glm and expanded into indicators by
# each tandem node: the same model space, whatever the reference levels.
# With missing cells, glm drops the incomplete rows (its default na.omit),
# as tandem does with missing: drop; the rows compared are glm's.
# Usage: Rscript german_credit_glm_check.R DIR LABELLED_AUC LABELLED_ROWS
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(file.path(args[1], "joined.csv"), stringsAsFactors = FALSE)
tandem_auc <- as.numeric(args[2])
tandem_rows <- as.integer(args[3])
fit <- glm(bad ~ duration_months + amount + installment_rate + age + factor(checking) +
             factor(credit_history) + factor(purpose) + factor(savings) + factor(employment) +
             factor(other_debtors) + factor(property) + factor(other_plans) + factor(housing) +
             factor(personal) + residence_years + telephone,
           data = d, family = binomial())
auc <- function(s, y) {
  r <- rank(s)
  n1 <- sum(y == 1); n0 <- sum(y == 0)
  (sum(r[y == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0)
}
used <- as.integer(names(fitted(fit)))  # the rows glm kept
glm_auc <- auc(fitted(fit), d$bad[used])
cat(sprintf("glm (R %s) on the joined plaintext: %d rows (%d with a missing value dropped), in-sample AUC %.5f\n",
            getRversion(), length(used), nrow(d) - length(used), glm_auc))
cat(sprintf("tandem split model, score job labelled_auc:  %d rows, AUC %.5f  (difference %+.5f)\n", tandem_rows, tandem_auc, tandem_auc - glm_auc))
if (tandem_rows != length(used)) {
  cat("FAIL: the score job scored a different number of labelled rows than glm used of the ground-truth join\n")
  quit(status = 1)
}
if (abs(tandem_auc - glm_auc) > 0.005) {
  cat("FAIL: |difference| > 0.005\n")
  quit(status = 1)
}
cat("ok: within 0.005\n")
