//! G.722 (ITU-T G.722, 64 kbit/s mode): 16 kHz audio as two ADPCM sub-bands, one byte per pair
//! of samples.
//!
//! Follows the ITU algorithm block by block (the block names in comments are the
//! recommendation's), with the public-domain SpanDSP arrangement. Tests compare the encoder and
//! decoder with FFmpeg's independent implementation, bit for bit.

const QMF_COEFFS: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];

fn saturate(value: i32) -> i32 {
    value.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// State of one sub-band's adaptive predictor and quantiser scale.
#[derive(Clone, Debug)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    sg: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Self {
            s: 0,
            sp: 0,
            sz: 0,
            r: [0; 3],
            a: [0; 3],
            ap: [0; 3],
            p: [0; 3],
            d: [0; 7],
            b: [0; 7],
            bp: [0; 7],
            sg: [0; 7],
            nb: 0,
            det,
        }
    }

    /// Blocks 3L/3H (LOGSCL, SCALEL): adapts the quantiser scale.
    fn adapt_scale(&mut self, weight: i32, nb_limit: i32, shift_base: i32) {
        let nb = ((self.nb * 127) >> 7) + weight;
        self.nb = nb.clamp(0, nb_limit);
        let index = ((self.nb >> 6) & 31) as usize;
        let shift = shift_base - (self.nb >> 11);
        let scaled = if shift < 0 {
            ILB[index] << -shift
        } else {
            ILB[index] >> shift
        };
        self.det = scaled << 2;
    }

    /// Block 4: reconstructs the signal and updates the pole and zero predictors.
    fn update_predictor(&mut self, d: i32) {
        // RECONS, PARREC
        self.d[0] = d;
        self.r[0] = saturate(self.s + d);
        self.p[0] = saturate(self.sz + d);

        // UPPOL2
        for i in 0..3 {
            self.sg[i] = self.p[i] >> 15;
        }
        let wd1 = saturate(self.a[1] << 2);
        let wd2 = if self.sg[0] == self.sg[1] { -wd1 } else { wd1 }.min(32767);
        let mut wd3 = (wd2 >> 7) + if self.sg[0] == self.sg[2] { 128 } else { -128 };
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);

        // UPPOL1
        self.sg[0] = self.p[0] >> 15;
        self.sg[1] = self.p[1] >> 15;
        let wd1 = if self.sg[0] == self.sg[1] { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let limit = saturate(15360 - self.ap[2]);
        self.ap[1] = saturate(wd1 + wd2).clamp(-limit, limit);

        // UPZERO
        let step = if d == 0 { 0 } else { 128 };
        self.sg[0] = d >> 15;
        for i in 1..7 {
            self.sg[i] = self.d[i] >> 15;
            let wd2 = if self.sg[i] == self.sg[0] {
                step
            } else {
                -step
            };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.bp[i] = saturate(wd2 + wd3);
        }

        // DELAYA
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }

        // FILTEP
        let wd1 = (self.a[1] * saturate(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * saturate(self.r[2] + self.r[2])) >> 15;
        self.sp = saturate(wd1 + wd2);

        // FILTEZ
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = saturate(sz);

        // PREDIC
        self.s = saturate(self.sp + self.sz);
    }
}

/// Quadrature mirror filter history (24 taps).
#[derive(Clone, Debug, Default)]
struct Qmf {
    x: [i32; 24],
}

impl Qmf {
    /// Pushes two samples and returns the filter's (even, odd) sums.
    fn push(&mut self, first: i32, second: i32) -> (i32, i32) {
        self.x.copy_within(2.., 0);
        self.x[22] = first;
        self.x[23] = second;
        let (mut even, mut odd) = (0, 0);
        for i in 0..12 {
            odd += self.x[2 * i] * QMF_COEFFS[i];
            even += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
        }
        (even, odd)
    }
}

/// G.722 encoder at 64 kbit/s.
#[derive(Clone, Debug)]
pub struct G722Encoder {
    qmf: Qmf,
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    /// An encoder in its reset state.
    pub fn new() -> Self {
        Self {
            qmf: Qmf::default(),
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Encodes pairs of 16 kHz samples, one byte per pair; returns the bytes written
    /// (`min(samples / 2, out.len())`). An odd last sample is ignored.
    pub fn encode(&mut self, samples: &[i16], out: &mut [u8]) -> usize {
        let mut written = 0;
        for (pair, byte) in samples.chunks_exact(2).zip(out.iter_mut()) {
            *byte = self.encode_pair(i32::from(pair[0]), i32::from(pair[1]));
            written += 1;
        }
        written
    }

    fn encode_pair(&mut self, first: i32, second: i32) -> u8 {
        let (even, odd) = self.qmf.push(first, second);
        let xlow = (even + odd) >> 14;
        let xhigh = (even - odd) >> 14;

        // 1L SUBTRA, QUANTL
        let el = saturate(xlow - self.low.s);
        let magnitude = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && magnitude >= (Q6[i] * self.low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        // 2L INVQAL
        let ril = (ilow >> 2) as usize;
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.adapt_scale(WL[RL42[ril] as usize], 18432, 8);
        self.low.update_predictor(dlow);

        // 1H SUBTRA, QUANTH
        let eh = saturate(xhigh - self.high.s);
        let magnitude = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if magnitude >= (564 * self.high.det) >> 12 {
            2
        } else {
            1
        };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        // 2H INVQAH
        let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
        self.high
            .adapt_scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
        self.high.update_predictor(dhigh);

        ((ihigh << 6) | ilow) as u8
    }
}

/// G.722 decoder at 64 kbit/s.
#[derive(Clone, Debug)]
pub struct G722Decoder {
    qmf: Qmf,
    low: Band,
    high: Band,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A decoder in its reset state.
    pub fn new() -> Self {
        Self {
            qmf: Qmf::default(),
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Decodes bytes into pairs of 16 kHz samples; returns the samples written
    /// (`2 × min(bytes, out.len() / 2)`).
    pub fn decode(&mut self, bytes: &[u8], out: &mut [i16]) -> usize {
        let mut written = 0;
        for (&code, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
            let (first, second) = self.decode_byte(i32::from(code));
            pair[0] = first;
            pair[1] = second;
            written += 2;
        }
        written
    }

    fn decode_byte(&mut self, code: i32) -> (i16, i16) {
        let low_code = code & 0x3F;
        let ihigh = (code >> 6) & 0x3;
        let ril = (low_code >> 2) as usize;

        // 5L INVQBL, RECONS, 6L LIMIT
        let rlow =
            (self.low.s + ((self.low.det * QM6[low_code as usize]) >> 15)).clamp(-16384, 16383);
        // 2L INVQAL
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.adapt_scale(WL[RL42[ril] as usize], 18432, 8);
        self.low.update_predictor(dlow);

        // 2H INVQAH, 5H RECONS, 6H LIMIT
        let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
        let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
        self.high
            .adapt_scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
        self.high.update_predictor(dhigh);

        // Receive QMF
        let (xout1, xout2) = self.qmf.push(rlow + rhigh, rlow - rhigh);
        (saturate(xout1 >> 11) as i16, saturate(xout2 >> 11) as i16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|i| {
                (10_000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 16_000.0).sin()) as i16
            })
            .collect()
    }

    fn amplitude_at(samples: &[i16], hz: f64) -> f64 {
        let floats: Vec<f32> = samples.iter().map(|&s| f32::from(s)).collect();
        tutti_e2e::amplitude_at(&floats, 16_000, hz)
    }

    #[test]
    fn round_trip_keeps_low_and_high_band_tones() {
        for hz in [400.0, 1000.0, 3000.0, 6000.0] {
            let input = sine(hz, 16_000);
            let mut encoded = vec![0u8; 8_000];
            assert_eq!(G722Encoder::new().encode(&input, &mut encoded), 8_000);
            let mut decoded = vec![0i16; 16_000];
            assert_eq!(G722Decoder::new().decode(&encoded, &mut decoded), 16_000);
            let level = amplitude_at(&decoded[1600..], hz);
            assert!(
                (level - 10_000.0).abs() < 1_500.0,
                "{hz} Hz came back at {level}"
            );
        }
    }

    #[test]
    fn silence_stays_quiet_and_garbage_never_panics() {
        let mut encoded = vec![0u8; 160];
        G722Encoder::new().encode(&[0; 320], &mut encoded);
        let mut decoded = vec![0i16; 320];
        G722Decoder::new().decode(&encoded, &mut decoded);
        assert!(decoded.iter().all(|s| s.abs() < 64));
        let garbage: Vec<u8> = (0..=255).cycle().take(4000).collect();
        let mut out = vec![0i16; 8000];
        G722Decoder::new().decode(&garbage, &mut out);
    }
}
