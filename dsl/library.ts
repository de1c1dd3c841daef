/**
 * The built-in rules, written in the update-rule language itself. Each rule gives the
 * direction d_t; the learning rate multiplies it from outside: w <- w - lr * d_t.
 * Names, hyperparameters and semantics follow docs/CONTRACT.md; tests check each one against
 * its published equations (and PowerSign/AddSign against TensorFlow's kernels).
 */
export const LIBRARY_SOURCE = `
# Plain gradient descent (torch.optim.SGD).
rule sgd = g

# Heavy-ball momentum, buf = mu*buf + g (torch.optim.SGD(momentum=mu)).
rule momentum(mu = 0.9) = accum(g, mu)

# Nesterov momentum, g + mu*buf (torch.optim.SGD(momentum=mu, nesterov=True)).
rule nesterov(mu = 0.9) = g + mu * accum(g, mu)

# Adam (Kingma & Ba), bias-corrected as torch.optim.Adam computes it.
rule adam(beta1 = 0.9, beta2 = 0.999, eps = 1e-8) {
  mhat = ema(g, beta1) / (1 - beta1^t)
  mhat / (sqrt(ema(g^2, beta2)) / sqrt(1 - beta2^t) + eps)
}

# AMSGrad (Reddi et al.): the running maximum of v in the denominator.
rule amsgrad(beta1 = 0.9, beta2 = 0.999, eps = 1e-8) {
  mhat = ema(g, beta1) / (1 - beta1^t)
  mhat / (sqrt(runmax(ema(g^2, beta2))) / sqrt(1 - beta2^t) + eps)
}

# AdamW (Loshchilov & Hutter): decoupled weight decay, as torch.optim.AdamW.
rule adamw(beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.01) =
  adam(beta1 = beta1, beta2 = beta2, eps = eps) + wd * w

# SGD with momentum and decoupled weight decay (SGDW, Loshchilov & Hutter).
rule sgdw(mu = 0.9, wd = 0.0001) = accum(g, mu) + wd * w

# RMSProp (torch.optim.RMSprop(alpha=decay)).
rule rmsprop(decay = 0.99, eps = 1e-8) = g / (sqrt(ema(g^2, decay)) + eps)

# Adagrad (torch.optim.Adagrad).
rule adagrad(eps = 1e-10) = g / (sqrt(sum(g^2)) + eps)

# Lion (Chen et al. 2023): sign of an interpolation with the momentum *before* its update.
rule lion(beta1 = 0.9, beta2 = 0.99, wd = 0) =
  sign(beta1 * prev(ema(g, beta2)) + (1 - beta1) * g) + wd * w

# Signum (Bernstein et al.): the sign of the momentum.
rule signum(beta = 0.9) = sign(ema(g, beta))

# PowerSign (Bello et al. 2017): base^(sign(g)*sign(m)) * g.
rule powersign(base = e, beta = 0.9) = exp(log(base) * sign(g) * sign(ema(g, beta))) * g

# AddSign (Bello et al. 2017): (alpha + sign(g)*sign(m)) * g.
rule addsign(alpha = 1, beta = 0.9) = (alpha + sign(g) * sign(ema(g, beta))) * g

# Sign-decay variants: the agreement term fades over T steps (TF sign_decay.py).
rule powersign-ld(base = e, beta = 0.9) =
  exp(log(base) * lindecay(T) * sign(g) * sign(ema(g, beta))) * g
rule powersign-cd(base = e, beta = 0.9, periods = 0.5) =
  exp(log(base) * cosdecay(T, periods) * sign(g) * sign(ema(g, beta))) * g
rule powersign-rd(base = e, beta = 0.9, periods = 1) =
  exp(log(base) * restartdecay(T, periods) * sign(g) * sign(ema(g, beta))) * g
rule addsign-ld(alpha = 1, beta = 0.9) =
  (alpha + lindecay(T) * sign(g) * sign(ema(g, beta))) * g
rule addsign-cd(alpha = 1, beta = 0.9, periods = 0.5) =
  (alpha + cosdecay(T, periods) * sign(g) * sign(ema(g, beta))) * g
rule addsign-rd(alpha = 1, beta = 0.9, periods = 1) =
  (alpha + restartdecay(T, periods) * sign(g) * sign(ema(g, beta))) * g
`;

/** One-line descriptions for `nos rules`. */
export const LIBRARY_DOCS: Readonly<Record<string, string>> = {
  sgd: 'plain gradient descent',
  momentum: 'heavy-ball momentum (torch SGD momentum)',
  nesterov: 'Nesterov momentum (torch SGD nesterov)',
  adam: 'Adam with bias correction (torch Adam)',
  amsgrad: 'AMSGrad (torch Adam amsgrad=True)',
  adamw: 'Adam with decoupled weight decay (torch AdamW)',
  sgdw: 'momentum SGD with decoupled weight decay',
  rmsprop: 'RMSProp (torch RMSprop)',
  adagrad: 'Adagrad (torch Adagrad)',
  lion: 'Lion (Chen et al. 2023)',
  signum: 'sign of the momentum (Bernstein et al. 2018)',
  powersign: 'PowerSign (Bello et al. 2017)',
  addsign: 'AddSign (Bello et al. 2017)',
  'powersign-ld': 'PowerSign with linear sign decay',
  'powersign-cd': 'PowerSign with cosine sign decay',
  'powersign-rd': 'PowerSign with restart sign decay',
  'addsign-ld': 'AddSign with linear sign decay',
  'addsign-cd': 'AddSign with cosine sign decay',
  'addsign-rd': 'AddSign with restart sign decay',
};
