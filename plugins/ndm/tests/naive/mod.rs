//! An independent f64 token loop written straight from the equations (the crate docs and the
//! reference specification §7–§9), sharing no code with the crate: the model is checked
//! against it in every variant and mode.

#![allow(dead_code, missing_docs, clippy::needless_range_loop)]

use mnnn_core::Tensors;

fn sig(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn cl(v: f64, lim: f64, on: bool) -> f64 {
    if on { v.clamp(-lim, lim) } else { v }
}

/// The naive model: parameters and one sequence's state by name.
pub struct Naive {
    pub variant: &'static str,
    pub design: bool,
    pub i: usize,
    pub h: usize,
    pub m: usize,
    pub o: usize,
    pub dt: f64,
    pub lam: f64,
    pub tau: f64,
    pub rho: f64,
    pub gamma: f64,
    pub beta: f64,
    pub p: std::collections::HashMap<String, Vec<f64>>,
    pub s: std::collections::HashMap<String, Vec<f64>>,
}

impl Naive {
    pub fn from(
        variant: &'static str,
        design: bool,
        (i, h, m, o): (usize, usize, usize, usize),
        consts: (f64, f64, f64, f64, f64, f64),
        params: &Tensors<f64>,
        state: &Tensors<f64>,
    ) -> Self {
        let grab = |t: &Tensors<f64>| {
            t.layout()
                .entries()
                .iter()
                .enumerate()
                .map(|(k, e)| (e.name.clone(), t.slice(k).to_vec()))
                .collect()
        };
        let (dt, lam, tau, rho, gamma, beta) = consts;
        Naive {
            variant,
            design,
            i,
            h,
            m,
            o,
            dt,
            lam,
            tau,
            rho,
            gamma,
            beta,
            p: grab(params),
            s: grab(state),
        }
    }

    fn pv(&self, n: &str) -> &Vec<f64> {
        &self.p[n]
    }

    /// One step; returns the output.
    pub fn step(&mut self, x: &[f64]) -> Vec<f64> {
        let (i_n, h_n, m_n, o_n) = (self.i, self.h, self.m, self.o);
        let clamp = self.variant == "clamped";
        let mom = self.variant == "momentum";
        let win0 = self.pv("w_in").clone();
        let wh0 = self.pv("w_h").clone();
        let mut a = self.s["fast_in"].clone();
        let mut b = self.s["fast_h"].clone();
        let mut pa = self.s["plasticity_in"].clone();
        let mut pb = self.s["plasticity_h"].clone();
        let h0 = self.s["h"].clone();
        let mut mf = self.s["manifold"].clone();
        let (eta_in, eta_h) = (self.pv("eta_in").clone(), self.pv("eta_h").clone());
        // Drives.
        let mut u = vec![0.0; h_n];
        let mut r = vec![0.0; h_n];
        for j in 0..h_n {
            u[j] = self.pv("b_h")[j];
            for i in 0..i_n {
                u[j] += x[i] * (win0[i * h_n + j] + a[i * h_n + j]);
            }
            for i in 0..h_n {
                r[j] += h0[i] * (wh0[i * h_n + j] + b[i * h_n + j]);
            }
        }
        // ndm.c writes before the read, from h0.
        if !self.design && self.variant == "original" {
            let (k, v) = (self.pv("k").clone(), self.pv("v").clone());
            for mm in 0..m_n {
                let kl: f64 = (0..h_n).map(|i| h0[i] * k[i * m_n + mm]).sum();
                let km = sig(kl);
                for i in 0..h_n {
                    mf[mm * h_n + i] = self.gamma * mf[mm * h_n + i] + km * h0[i] * v[i * m_n + mm];
                }
            }
        }
        let q: Vec<f64> = (0..m_n)
            .map(|mm| {
                let l: f64 = (0..h_n).map(|i| h0[i] * self.pv("q")[i * m_n + mm]).sum();
                sig(cl(l, 20.0, clamp))
            })
            .collect();
        let mut hn = vec![0.0; h_n];
        let mut dd = vec![0.0; h_n];
        let mut pre = self.s["pre"].clone();
        let mut post = self.s["post"].clone();
        for j in 0..h_n {
            let mr: f64 = (0..m_n).map(|mm| q[mm] * mf[mm * h_n + j]).sum();
            let z = cl(
                cl(u[j], 20.0, clamp) + cl(r[j], 20.0, clamp) + cl(mr, 20.0, clamp),
                20.0,
                clamp,
            );
            let d = cl(z.tanh() - h0[j], 5.0, clamp);
            let hv = cl(h0[j] + self.dt * d, 5.0, clamp);
            hn[j] = hv;
            dd[j] = d;
            pre[j] = self.tau * pre[j] + (1.0 - self.tau) * cl(hv.abs(), 5.0, clamp);
            post[j] = self.tau * post[j] + (1.0 - self.tau) * cl(d.abs(), 5.0, clamp);
            if clamp {
                pre[j] = pre[j].clamp(0.0, 2.0);
                post[j] = post[j].clamp(0.0, 2.0);
            }
        }
        // Fast weights.
        let alpha = if self.design {
            self.dt * (1.0 - self.beta)
        } else {
            self.dt * 0.01
        };
        let mut va = self.s.get("velocity_in").cloned().unwrap_or_default();
        let mut vb = self.s.get("velocity_h").cloned().unwrap_or_default();
        let upd =
            |w0: &[f64], a: &mut [f64], p: &mut [f64], v: &mut [f64], rows: &[f64], eta: &[f64]| {
                for i in 0..rows.len() {
                    for j in 0..h_n {
                        let k = i * h_n + j;
                        let e = cl(rows[i] * eta[j] * post[j], 5.0, clamp);
                        let w = w0[k] + a[k];
                        let target = if self.design { a[k] } else { w };
                        let g = cl(p[k] * (e - self.lam * target), 5.0, clamp);
                        if mom {
                            v[k] = self.beta * v[k] + alpha * g;
                            a[k] += v[k];
                        } else {
                            let wn = cl(w + self.dt * g, 10.0, clamp);
                            a[k] = wn - w0[k];
                        }
                        p[k] *= self.rho;
                    }
                }
            };
        upd(&win0, &mut a, &mut pa, &mut va, x, &eta_in);
        upd(&wh0, &mut b, &mut pb, &mut vb, &pre, &eta_h);
        if self.design {
            let (k, v) = (self.pv("k").clone(), self.pv("v").clone());
            let vv: Vec<f64> = (0..h_n)
                .map(|j| (0..h_n).map(|i| hn[i] * v[i * h_n + j]).sum::<f64>().tanh())
                .collect();
            for mm in 0..m_n {
                let kl: f64 = (0..h_n).map(|i| hn[i] * k[i * m_n + mm]).sum();
                let km = sig(cl(kl, 20.0, clamp));
                for j in 0..h_n {
                    mf[mm * h_n + j] =
                        self.gamma * mf[mm * h_n + j] + (1.0 - self.gamma) * km * vv[j];
                }
            }
        }
        let y: Vec<f64> = (0..o_n)
            .map(|oo| {
                let v: f64 = self.pv("b_out")[oo]
                    + (0..h_n)
                        .map(|j| hn[j] * self.pv("w_out")[j * o_n + oo])
                        .sum::<f64>();
                cl(v, 20.0, clamp)
            })
            .collect();
        for (n, v) in [
            ("h", hn),
            ("pre", pre),
            ("post", post),
            ("manifold", mf),
            ("fast_in", a),
            ("fast_h", b),
            ("plasticity_in", pa),
            ("plasticity_h", pb),
        ] {
            self.s.insert(n.into(), v);
        }
        if mom {
            self.s.insert("velocity_in".into(), va);
            self.s.insert("velocity_h".into(), vb);
        }
        y
    }
}
