// Learning-rate schedules: linear warmup then linear or cosine decay (the Hugging Face
// get_linear_schedule_with_warmup / get_cosine_schedule_with_warmup shapes).

export interface ScheduleConfig {
  lr: number;
  totalSteps: number;
  warmupSteps?: number;
  decay?: 'linear' | 'cosine' | 'constant';
  /** Floor as a fraction of lr (cosine and linear). */
  minRatio?: number;
}

/** Learning rate for 0-based `step` (the update about to be applied). */
export function learningRate(cfg: ScheduleConfig, step: number): number {
  const warm = cfg.warmupSteps ?? 0;
  const min = cfg.minRatio ?? 0;
  if (step < warm) return (cfg.lr * (step + 1)) / warm;
  const span = Math.max(1, cfg.totalSteps - warm);
  const frac = Math.min(1, (step - warm) / span);
  switch (cfg.decay ?? 'linear') {
    case 'constant':
      return cfg.lr;
    case 'cosine':
      return cfg.lr * (min + (1 - min) * 0.5 * (1 + Math.cos(Math.PI * frac)));
    case 'linear':
      return cfg.lr * (min + (1 - min) * (1 - frac));
  }
}
