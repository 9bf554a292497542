// nimbleops from C++: solve a slippery gridworld with value iteration, train tabular Q-learning on
// it with batched updates, and compute GAE over a rollout. Every array is a std::vector; the
// library sees it through a nimbleops::View. Exits with 1 when a result is off.
//
// The gridworld (Russell & Norvig's): an N x N grid, the goal in the bottom-right corner (+1) and
// a pit beside it (-1), both terminal (absorbing, no further reward); every other step costs 0.04.
// An action moves as intended with probability 0.8 and to either side with 0.1 each; a move into
// the wall stays.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <vector>

#include <nimbleops/nimbleops.h>

namespace {

using nimbleops::contiguous_view;

constexpr int N = 6, S = N * N, A = 4;  // actions: up, right, down, left
constexpr int kGoal = S - 1, kPit = S - 1 - N;
constexpr double kGamma = 0.95;

bool terminal(int s) { return s == kGoal || s == kPit; }
double reward_entering(int s) { return s == kGoal ? 1.0 : s == kPit ? -1.0 : -0.04; }

int move(int s, int a) {
  const int r = s / N, c = s % N;
  const int dr[] = {-1, 0, 1, 0}, dc[] = {0, 1, 0, -1};
  const int nr = r + dr[a], nc = c + dc[a];
  return (nr < 0 || nr >= N || nc < 0 || nc >= N) ? s : nr * N + nc;
}

struct Model {
  std::vector<double> P = std::vector<double>(size_t(S) * A * S, 0.0);  // [S, A, S]
  std::vector<double> R = std::vector<double>(size_t(S) * A, 0.0);      // [S, A], expected
};

Model gridworld() {
  Model m;
  for (int s = 0; s < S; ++s)
    for (int a = 0; a < A; ++a) {
      double* row = &m.P[(size_t(s) * A + a) * S];
      if (terminal(s)) {
        row[s] = 1.0;
        continue;
      }
      const int outcomes[] = {move(s, a), move(s, (a + 1) % A), move(s, (a + 3) % A)};
      const double probs[] = {0.8, 0.1, 0.1};
      for (int k = 0; k < 3; ++k) {
        row[outcomes[k]] += probs[k];
        m.R[size_t(s) * A + a] += probs[k] * reward_entering(outcomes[k]);
      }
    }
  return m;
}

int sample_next(const Model& m, int s, int a, std::mt19937_64& rng) {
  const double* row = &m.P[(size_t(s) * A + a) * S];
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  for (int next = 0; next < S; ++next) {
    if (u < row[next]) return next;
    u -= row[next];
  }
  return s;
}

int greedy(const double* q) { return int(std::max_element(q, q + A) - q); }

}  // namespace

int main() {
  bool ok = true;
  std::printf("nimbleops %s, %d threads, SIMD %s\n", nimbleops::version(), nimbleops::get_num_threads(),
              nimbleops::simd_level().c_str());

  // ---- value iteration ----
  const Model model = gridworld();
  const nimbleops::rl::MdpViews mdp =
      nimbleops::rl::dense_mdp(contiguous_view(model.P.data(), {1, S, A, S}), contiguous_view(model.R.data(), {1, S, A}),
                               1, S, A);
  std::vector<double> V(S, 0.0);
  std::vector<int64_t> policy(S, 0);
  const nimbleops::rl::SolveStats vi = nimbleops::rl::value_iteration(
      mdp, kGamma, contiguous_view(V.data(), {1, S}), contiguous_view(policy.data(), {1, S}), 1e-8);
  std::printf("value iteration: %d states, %d actions, %lld iterations, converged %d, V*(start) = %.6f\n", S, A,
              static_cast<long long>(vi.iterations[0]), int(vi.converged[0]), V[0]);
  ok &= vi.converged[0] == 1;
  const char* arrows[] = {"^", ">", "v", "<"};
  for (int r = 0; r < N; ++r) {
    std::printf("  ");
    for (int c = 0; c < N; ++c) {
      const int s = r * N + c;
      std::printf("%s ", s == kGoal ? "G" : s == kPit ? "X" : arrows[policy[size_t(s)]]);
    }
    std::printf("\n");
  }

  // ---- tabular Q-learning: B environments stepped together, one batched update a step ----
  constexpr int B = 32, kSteps = 20000;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> start(0, S - 1), any_action(0, A - 1);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  auto reset = [&] {
    int s;
    do s = start(rng);
    while (terminal(s));
    return s;
  };
  std::vector<double> Q(size_t(S) * A, 0.0);
  std::vector<int64_t> state(B), s(B), a(B), s_next(B);
  std::vector<double> r(B), td_errors(B);
  std::vector<uint8_t> terminated(B);
  for (int b = 0; b < B; ++b) state[size_t(b)] = reset();
  nimbleops::rl::TdViews step;
  step.rule = nimbleops::rl::TdRule::q_learning;
  step.sequential = false;  // every TD error from Q as it was before the step, increments summed
  step.Q = contiguous_view(Q.data(), {S, A});
  step.s = contiguous_view(s.data(), {B});
  step.a = contiguous_view(a.data(), {B});
  step.s_next = contiguous_view(s_next.data(), {B});
  step.rewards = contiguous_view(r.data(), {B});
  step.terminated = contiguous_view(terminated.data(), {B});
  step.gamma_scalar = kGamma;
  const nimbleops::View errors = contiguous_view(td_errors.data(), {B});
  for (int t = 0; t < kSteps; ++t) {
    for (int b = 0; b < B; ++b) {
      const int here = int(state[size_t(b)]);
      const int act = uniform(rng) < 0.5 ? any_action(rng) : greedy(&Q[size_t(here) * A]);
      const int next = sample_next(model, here, act, rng);
      s[size_t(b)] = here;
      a[size_t(b)] = act;
      s_next[size_t(b)] = next;
      r[size_t(b)] = reward_entering(next);
      terminated[size_t(b)] = terminal(next);
      state[size_t(b)] = terminal(next) ? reset() : next;
    }
    step.alpha_scalar = 0.2 / (1.0 + t / 500.0);  // decaying step sizes (Robbins-Monro) settle the estimates
    nimbleops::rl::td_update_(step, errors);
  }
  std::vector<int64_t> learned(S);
  int agree = 0, decided = 0;
  for (int st = 0; st < S; ++st) {
    learned[size_t(st)] = greedy(&Q[size_t(st) * A]);
    if (terminal(st)) continue;
    ++decided;
    agree += learned[size_t(st)] == policy[size_t(st)];
  }
  // the learned values against Q* = R + gamma P V*, and the learned policy's own values against V*
  std::vector<double> Q_star(size_t(S) * A), V_learned(S, 0.0);
  nimbleops::rl::q_values(mdp, contiguous_view(V.data(), {1, S}), kGamma, contiguous_view(Q_star.data(), {1, S, A}));
  nimbleops::rl::policy_evaluation(mdp, kGamma, contiguous_view(learned.data(), {1, S}),
                                   contiguous_view(V_learned.data(), {1, S}), 1e-10);
  double q_error = 0.0, regret = 0.0;
  for (int st = 0; st < S; ++st) {
    regret = std::max(regret, V[size_t(st)] - V_learned[size_t(st)]);
    for (int k = 0; k < A && !terminal(st); ++k)
      q_error = std::max(q_error, std::fabs(Q[size_t(st) * A + k] - Q_star[size_t(st) * A + k]));
  }
  std::printf("q-learning: %d transitions in %d environments, max |Q - Q*| = %.2e, greedy policy = VI's in %d of %d "
              "states, max V*(s) - V_learned(s) = %.2e\n", B * kSteps, B, q_error, agree, decided, regret);
  ok &= q_error < 0.05 && regret < 0.05;

  // ---- GAE over a rollout of the optimal policy with 10% random actions, episodes cut at 20 steps ----
  constexpr int T = 64, E = 8;
  constexpr double kLambda = 0.9;
  std::vector<double> rewards(T * E), values(T * E), next_values(T * E), advantages(T * E), targets(T * E);
  std::vector<uint8_t> done_terminal(T * E), done_truncated(T * E);
  for (int e = 0; e < E; ++e) {
    int here = reset(), age = 0;
    for (int t = 0; t < T; ++t) {
      const int act = uniform(rng) < 0.1 ? any_action(rng) : int(policy[size_t(here)]);
      const int next = sample_next(model, here, act, rng);
      const size_t i = size_t(t) * E + e;  // time-major [T, E]
      rewards[i] = reward_entering(next);
      values[i] = V[size_t(here)];
      next_values[i] = V[size_t(next)];
      done_terminal[i] = terminal(next);
      done_truncated[i] = !terminal(next) && ++age == 20;
      if (done_terminal[i] || done_truncated[i]) {
        here = reset();
        age = 0;
      } else {
        here = next;
      }
    }
  }
  nimbleops::rl::ReturnsViews rollout;
  rollout.estimator = nimbleops::rl::Estimator::gae;
  rollout.rewards = contiguous_view(rewards.data(), {T, E});
  rollout.values = contiguous_view(values.data(), {T, E});
  rollout.next_values = contiguous_view(next_values.data(), {T, E});
  rollout.terminated = contiguous_view(done_terminal.data(), {T, E});
  rollout.truncated = contiguous_view(done_truncated.data(), {T, E});
  rollout.gamma_scalar = kGamma;
  rollout.lam = kLambda;
  nimbleops::rl::estimate_returns(rollout, contiguous_view(advantages.data(), {T, E}),
                                  contiguous_view(targets.data(), {T, E}));
  // the recursion written out, for comparison
  double worst = 0.0;
  for (int e = 0; e < E; ++e) {
    double next_advantage = 0.0;
    for (int t = T - 1; t >= 0; --t) {
      const size_t i = size_t(t) * E + e;
      const bool cont = !done_terminal[i] && !done_truncated[i] && t < T - 1;
      const double delta = rewards[i] + kGamma * (done_terminal[i] ? 0.0 : next_values[i]) - values[i];
      const double adv = delta + kGamma * kLambda * (cont ? next_advantage : 0.0);
      worst = std::max({worst, std::fabs(adv - advantages[i]), std::fabs(adv + values[i] - targets[i])});
      next_advantage = adv;
    }
  }
  std::printf("gae: T=%d B=%d, max |nimbleops - loop| = %.2e\n", T, E, worst);
  ok &= worst < 1e-12;

  // ---- errors: the Python API's messages, as exceptions ----
  Model broken = gridworld();
  broken.P[5] = -0.5;
  try {
    nimbleops::rl::dense_mdp(contiguous_view(broken.P.data(), {1, S, A, S}),
                             contiguous_view(broken.R.data(), {1, S, A}), 1, S, A);
    std::printf("error: none raised for a negative probability\n");
    ok = false;
  } catch (const std::invalid_argument& e) {
    std::printf("error: %s\n", e.what());
  }
  s[0] = S;  // a state out of range: nothing is written
  const std::vector<double> before = Q;
  try {
    nimbleops::rl::td_update_(step, errors);
    ok = false;
  } catch (const std::out_of_range& e) {
    std::printf("error: %s\n", e.what());
    ok &= Q == before;
  }

  std::printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
