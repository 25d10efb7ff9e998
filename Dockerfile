FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files are collected here, as root: at run time the app (user tipoff) may write only to /app/var.
# collectstatic reads no secret and no database; the settings only need one to load.
RUN TIPOFF_ALLOW_INSECURE_SECRET=1 python manage.py collectstatic --noinput \
    && useradd --system tipoff && mkdir -p /app/var && chown tipoff /app/var
USER tipoff
EXPOSE 8000
