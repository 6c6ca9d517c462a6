# A Sidekiq 6.4 no-op job for the steady-rate comparison (Benchmarks/sidekiq/steady.rb). perform(seq, enqueued_ns)
# appends "seq enqueued_ns started_ns" to the file named by $STEADY_REC, with the wall-clock time (CLOCK_REALTIME,
# ns) at which the job started, so the harness can compute enqueue→start latency.
require "sidekiq"
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

STEADY_REDIS_URL = ENV.fetch("REDIS_URL")
Sidekiq.configure_server do |config|
  config.redis = {url: STEADY_REDIS_URL}
  config.logger.level = Logger::WARN
end
Sidekiq.configure_client { |config| config.redis = {url: STEADY_REDIS_URL, size: 2} }

class SteadyJob
  include Sidekiq::Worker
  RECORD_LOCK = Mutex.new

  def perform(seq, enqueued_ns)
    started_ns = Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)
    RECORD_LOCK.synchronize do
      @@record ||= File.open(ENV.fetch("STEADY_REC"), File::WRONLY | File::APPEND | File::CREAT)
      @@record.syswrite("#{seq} #{enqueued_ns} #{started_ns}\n")
    end
  end
end
